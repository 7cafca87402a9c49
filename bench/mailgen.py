"""Realistic mail for the benchmarks: people, topics, English and Japanese text.

Shared by the scale generator (which needs only the text of each message) and
the ingest benchmarks (which need whole MIME messages as a mail server holds
them). Everything is drawn from a ``random.Random`` the caller seeds, so a run
is reproducible. Pure Python; no Django.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime, formataddr
from html import escape
from urllib.parse import quote

EN_FIRST = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph",
    "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Lisa", "Matthew",
    "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley", "Paul",
    "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kevin", "Carol", "Brian",
    "Amanda",
]  # fmt: skip
EN_LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell",
    "Roberts",
]  # fmt: skip
JA_FAMILY = [
    ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"),
    ("伊藤", "ito"), ("渡辺", "watanabe"), ("山本", "yamamoto"), ("中村", "nakamura"),
    ("小林", "kobayashi"), ("加藤", "kato"), ("吉田", "yoshida"), ("山田", "yamada"),
    ("佐々木", "sasaki"), ("山口", "yamaguchi"), ("松本", "matsumoto"),
    ("井上", "inoue"), ("木村", "kimura"), ("林", "hayashi"), ("斎藤", "saito"),
    ("清水", "shimizu"), ("山崎", "yamazaki"), ("森", "mori"), ("池田", "ikeda"),
    ("橋本", "hashimoto"), ("阿部", "abe"), ("石川", "ishikawa"),
    ("山下", "yamashita"), ("中島", "nakajima"), ("石井", "ishii"),
    ("小川", "ogawa"),
]  # fmt: skip
JA_GIVEN = [
    ("博", "hiroshi"), ("誠", "makoto"), ("健太", "kenta"), ("翔太", "shota"),
    ("大輔", "daisuke"), ("直樹", "naoki"), ("隆", "takashi"), ("学", "manabu"),
    ("剛", "tsuyoshi"), ("拓也", "takuya"), ("恵子", "keiko"), ("陽子", "yoko"),
    ("美穂", "miho"), ("由美", "yumi"), ("直美", "naomi"), ("真理子", "mariko"),
    ("裕子", "yuko"), ("愛", "ai"), ("さくら", "sakura"), ("彩", "aya"),
    ("和也", "kazuya"), ("洋平", "yohei"), ("康介", "kosuke"), ("聡", "satoshi"),
    ("智子", "tomoko"), ("久美子", "kumiko"), ("明美", "akemi"), ("瞳", "hitomi"),
    ("亮", "ryo"), ("修", "osamu"),
]  # fmt: skip
# (domain label, display name, language of its staff)
COMPANIES = [
    ("northwind", "Northwind Traders", "en"), ("contoso", "Contoso Ltd", "en"),
    ("fabrikam", "Fabrikam Inc", "en"), ("tailspin", "Tailspin Toys", "en"),
    ("adventure-works", "Adventure Works", "en"), ("litware", "Litware", "en"),
    ("proseware", "Proseware", "en"), ("wingtip", "Wingtip Toys", "en"),
    ("woodgrove", "Woodgrove Bank", "en"), ("lucerne", "Lucerne Publishing", "en"),
    ("margie", "Margie's Travel", "en"), ("humongous", "Humongous Insurance", "en"),
    ("blue-yonder", "Blue Yonder Airlines", "en"), ("coho", "Coho Winery", "en"),
    ("alpine", "Alpine Ski House", "en"), ("trey", "Trey Research", "en"),
    ("kawasaki-seiki", "川崎精機", "ja"), ("sakura-shoji", "さくら商事", "ja"),
    ("fujimi-denki", "富士見電機", "ja"), ("aoba-soft", "青葉ソフト", "ja"),
    ("nishiki-foods", "錦フーズ", "ja"), ("hikari-logi", "ひかり物流", "ja"),
    ("yamato-kensetsu", "大和建設", "ja"), ("minato-bank", "みなと銀行", "ja"),
    ("tsubasa-net", "つばさネット", "ja"), ("midori-pharma", "みどり製薬", "ja"),
]  # fmt: skip
# (English keyword, Japanese keyword): what a thread is about. Earlier topics
# are more popular; the searches of the scale benchmark use "invoice"/"請求書".
TOPICS = [
    ("status report", "進捗報告"), ("meeting", "打ち合わせ"),
    ("release plan", "リリース計画"), ("budget", "予算"),
    ("customer feedback", "お客様の声"), ("travel request", "出張申請"),
    ("quotation", "見積書"), ("invoice", "請求書"), ("contract", "契約書"),
    ("design review", "設計レビュー"), ("purchase order", "発注書"),
    ("support ticket", "問い合わせ"), ("shipment", "出荷"),
    ("hiring", "採用"), ("training", "研修"), ("security audit", "セキュリティ監査"),
    ("server maintenance", "サーバー保守"), ("marketing campaign", "販促キャンペーン"),
    ("trade show", "展示会"), ("office move", "事務所移転"),
    ("price list", "価格表"), ("sales forecast", "売上予測"),
    ("inventory", "在庫"), ("quality issue", "品質問題"),
    ("product launch", "新製品発表"), ("partner program", "パートナー制度"),
    ("year-end closing", "年度末決算"), ("tax filing", "税務申告"),
    ("insurance renewal", "保険更新"), ("user manual", "取扱説明書"),
    ("translation", "翻訳"), ("website update", "ウェブサイト更新"),
    ("newsletter", "ニュースレター"), ("survey results", "アンケート結果"),
    ("holiday schedule", "休暇予定"), ("expense report", "経費精算"),
    ("vendor selection", "業者選定"), ("data migration", "データ移行"),
    ("backup policy", "バックアップ方針"), ("board meeting", "取締役会"),
]  # fmt: skip
EN_SUBJECTS = [
    "{kw} for {customer}", "Question about the {kw}", "{kw}: next steps",
    "Updated {kw} ({month})", "Re-sending the {kw}", "{customer} {kw} review",
    "Action needed: {kw}", "Notes from today: {kw}", "{kw} draft v{n}",
    "FYI: {kw} changes", "{kw} - {customer}", "Follow-up on the {kw}",
]  # fmt: skip
JA_SUBJECTS = [
    "{kw}について（{customer}様）", "【ご確認】{kw}の件", "{kw}のご案内",
    "{month}月分の{kw}", "{kw}修正版の送付", "{customer}様 {kw}",
    "【至急】{kw}", "{kw}に関するご相談", "{kw}（第{n}版）", "{kw}の件",
    "Re: {kw}の確認", "{kw}についてのお願い",
]  # fmt: skip
EN_TOPIC_SENTENCES = [
    "Please find the {kw} details below.",
    "I have attached the latest {kw} for your review.",
    "Could you confirm the {kw} by Friday?",
    "The {kw} for {customer} needs one more look before we send it out.",
    "We went through the {kw} on this morning's call.",
    "Let me know if anything in the {kw} looks wrong to you.",
    "I updated the {kw} with the numbers from last week.",
    "{customer} asked whether the {kw} can be moved to next month.",
]  # fmt: skip
JA_TOPIC_SENTENCES = [
    "{kw}の詳細を以下にお送りします。",
    "最新の{kw}を添付いたしましたので、ご確認ください。",
    "金曜日までに{kw}をご確認いただけますでしょうか。",
    "{customer}様向けの{kw}について、送付前にもう一度確認が必要です。",
    "本日の会議で{kw}について話し合いました。",
    "{kw}に不明な点がございましたら、お知らせください。",
    "先週の数値をもとに{kw}を更新いたしました。",
    "{customer}様より、{kw}を来月に延期できないかとのご相談がありました。",
]  # fmt: skip
EN_GENERAL = [
    "Thanks for getting back to me so quickly.",
    "I spoke with the team and we are mostly in agreement.",
    "There are two open points that we still need to settle.",
    "The numbers look reasonable, but the second table is missing a column.",
    "Can we find thirty minutes on Tuesday or Wednesday to go over this?",
    "I will be out of the office on Monday, so please copy Sarah.",
    "We should keep the legal team in the loop on this one.",
    "The deadline is tight but I think it is still doable.",
    "Our warehouse in Rotterdam reported a delay of about a week.",
    "I have added my comments in the margin of the document.",
    "Please use the shared folder rather than sending large files by mail.",
    "The new process starts on the first of next month.",
    "I am not sure we have the budget for a second round.",
    "Everyone on the call agreed to revisit this after the holidays.",
    "The customer was happy with the first delivery.",
    "We need a decision from management before we can go ahead.",
    "Sorry for the late reply, this week has been busy.",
    "The figures in the attachment are preliminary.",
    "I would suggest we keep the current supplier for now.",
    "Let us aim to close this by the end of the quarter.",
    "The previous version had a typo on page three.",
    "I have asked accounting to double-check the totals.",
    "We can discuss the details at the weekly sync.",
    "Please make sure the changes are tracked.",
    "I think the second option is the safer choice.",
    "The feedback from the pilot group was mostly positive.",
    "Our contact at the bank will send the forms directly.",
    "The system will be unavailable on Saturday night.",
    "I have booked the large meeting room for Thursday afternoon.",
    "We are still waiting for the signed copy.",
    "Let me know if you need anything else from my side.",
    "The translation should be ready early next week.",
    "I have forwarded your question to the right person.",
    "This is the final version unless anyone objects.",
    "The spreadsheet now includes the regional breakdown.",
    "We will need approval from at least two managers.",
    "The shipping costs went up again this month.",
    "I can join the call but only for the first half hour.",
    "Could you send me the original file as well?",
    "We moved the review to the following Monday.",
]  # fmt: skip
JA_GENERAL = [
    "早速のご返信ありがとうございます。",
    "チーム内で確認したところ、おおむね合意が得られました。",
    "まだ二点ほど調整が必要な事項が残っております。",
    "数値は妥当に見えますが、二つ目の表に列が一つ不足しています。",
    "火曜日か水曜日に三十分ほどお時間をいただけますでしょうか。",
    "月曜日は不在にしておりますので、佐藤にも共有をお願いいたします。",
    "本件は法務部にも共有しておいた方がよいと思います。",
    "納期は厳しいですが、まだ間に合うと考えております。",
    "大阪の倉庫から一週間ほど遅れるとの連絡がありました。",
    "資料の余白にコメントを追加いたしました。",
    "大きなファイルはメールではなく共有フォルダをご利用ください。",
    "新しい手順は来月一日から開始いたします。",
    "二回目を実施する予算があるかどうかは分かりません。",
    "会議の参加者全員で、休暇明けに再検討することになりました。",
    "初回の納品についてお客様にご満足いただけました。",
    "進める前に経営陣の判断が必要です。",
    "ご返信が遅くなり申し訳ございません。",
    "添付の数値は暫定版です。",
    "当面は現在の仕入先を継続することをご提案いたします。",
    "四半期末までに完了することを目標にしましょう。",
    "前回の版では三ページ目に誤字がございました。",
    "合計金額について経理部に再確認を依頼しました。",
    "詳細は週次の定例会議で相談させてください。",
    "変更履歴が残るようにご留意ください。",
    "二つ目の案の方が安全だと考えます。",
    "試験導入グループからの評価はおおむね好評でした。",
    "銀行のご担当者様から直接書類が送付される予定です。",
    "土曜日の夜はシステムを停止いたします。",
    "木曜日の午後に大会議室を予約いたしました。",
    "署名済みの書類をまだお待ちしている状況です。",
    "ほかに必要なものがございましたら、お申し付けください。",
    "翻訳版は来週前半にご用意できる見込みです。",
    "いただいたご質問は担当者に転送いたしました。",
    "特にご意見がなければ、こちらを最終版といたします。",
    "表計算ファイルに地域別の内訳を追加しました。",
    "少なくとも二名の管理職の承認が必要です。",
    "今月も配送料が値上がりいたしました。",
    "会議には前半の三十分のみ参加できます。",
    "元のファイルもお送りいただけますでしょうか。",
    "レビューは翌週の月曜日に変更になりました。",
]  # fmt: skip
ATTACHMENT_KINDS = [
    ("application", "pdf", ".pdf"),
    ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document",
     ".docx"),
    ("image", "png", ".png"),
    ("image", "jpeg", ".jpg"),
    ("application", "zip", ".zip"),
]  # fmt: skip
START = datetime(2015, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 10 * 365 * 86400


@dataclass(frozen=True)
class Person:
    name: str
    address: str
    given: str
    family: str
    company: str
    lang: str

    @property
    def offset_minutes(self) -> int:
        return 540 if self.lang == "ja" else 0


def people(rng: random.Random, count: int) -> list[Person]:
    """``count`` distinct senders, about a third of them Japanese."""
    result: list[Person] = []
    seen: set[str] = set()
    while len(result) < count:
        label, company, lang = rng.choice(COMPANIES)
        if lang == "ja":
            (family, family_r), (given, given_r) = (
                rng.choice(JA_FAMILY),
                rng.choice(JA_GIVEN),
            )
            name = f"{family} {given}"
            local = f"{given_r[0]}.{family_r}" if rng.random() < 0.5 else family_r
            domain = f"{label}.example.co.jp"
        else:
            given, family = rng.choice(EN_FIRST), rng.choice(EN_LAST)
            name = f"{given} {family}"
            local = f"{given.lower()}.{family.lower()}"
            domain = f"{label}.example.com"
        address = f"{local}@{domain}"
        if address in seen:
            address = f"{local}{len(result)}@{domain}"
        seen.add(address)
        result.append(Person(name, address, given, family, company, lang))
    return result


def zipf_cumulative(count: int, exponent: float) -> list[float]:
    """Cumulative weights of ranks 1..count under a Zipf law (for rng.choices)."""
    total = 0.0
    cumulative = []
    for rank in range(1, count + 1):
        total += 1.0 / rank**exponent
        cumulative.append(total)
    return cumulative


def subject_for(rng: random.Random, lang: str, topic: int, customer: str) -> str:
    en, ja = TOPICS[topic]
    template = rng.choice(JA_SUBJECTS if lang == "ja" else EN_SUBJECTS)
    text = template.format(
        kw=ja if lang == "ja" else en,
        customer=customer,
        month=rng.randint(1, 12),
        n=rng.randint(2, 5),
    )
    return text[:1].upper() + text[1:]


def body_for(
    rng: random.Random,
    *,
    lang: str,
    topic: int,
    sender: Person,
    recipient: Person,
    customer: str,
    quote: bool,
) -> str:
    """A plain-text body: greeting, paragraphs, signature, maybe a quote."""
    en, ja = TOPICS[topic]
    general = JA_GENERAL if lang == "ja" else EN_GENERAL
    topical = JA_TOPIC_SENTENCES if lang == "ja" else EN_TOPIC_SENTENCES
    length = rng.randint(3, 7) if rng.random() < 0.9 else rng.randint(12, 30)
    sentences = rng.sample(general, min(length, len(general)))
    for _ in range(rng.randint(1, 2)):
        sentence = rng.choice(topical).format(
            kw=ja if lang == "ja" else en, customer=customer
        )
        sentences.insert(rng.randrange(len(sentences) + 1), sentence)
    joiner = "" if lang == "ja" else " "
    paragraphs = []
    while sentences:
        take = rng.randint(1, 3)
        paragraphs.append(joiner.join(sentences[:take]))
        sentences = sentences[take:]
    if lang == "ja":
        lines = [
            f"{recipient.company}",
            f"{recipient.family}様",
            "",
            f"いつもお世話になっております。{sender.company}の{sender.family}です。",
            "",
            "\n\n".join(paragraphs),
            "",
            "よろしくお願いいたします。",
            "",
            "--",
            sender.name,
            sender.company,
            f"TEL: 03-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        ]
    else:
        lines = [
            f"Hi {recipient.given},",
            "",
            "\n\n".join(paragraphs),
            "",
            rng.choice(["Best regards,", "Thanks,", "Kind regards,", "Cheers,"]),
            sender.name,
            sender.company,
        ]
    if quote:
        quoted = rng.sample(general, 3)
        lines += ["", f"> {quoted[0]}", f"> {quoted[1]}", ">", f"> {quoted[2]}"]
    return "\n".join(lines) + "\n"


def html_for(text: str, logo_cid: str = "") -> str:
    """The HTML alternative a mail client would send for ``text``.

    With ``logo_cid``, a signature picture from a ``cid:`` part comes first.
    """
    logo = f'<p><img src="cid:{escape(logo_cid)}" alt="logo"></p>' if logo_cid else ""
    # One paragraph a line: mail lines must stay under 998 characters.
    paragraphs = "".join(
        f"<p>{escape(p).replace(chr(10), '<br>')}</p>\n" for p in text.split("\n\n")
    )
    return (
        '<html><head><meta charset="utf-8"></head>\n'
        '<body style="font-family: Arial, sans-serif; font-size: 14px">\n'
        f"{logo}{paragraphs}</body></html>\n"
    )


def attachment_name(rng: random.Random, lang: str, topic: int, suffix: str) -> str:
    en, ja = TOPICS[topic]
    stamp = f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}"
    if lang == "ja":
        return f"{ja}_{stamp}{suffix}"
    return f"{en.replace(' ', '-')}-{stamp}{suffix}"


# -- whole messages, as a mail server holds them ----------------------------
#
# Built as bytes rather than with email.message.EmailMessage, whose base64
# encoder loops in Python and would make seeding a 100,000-message mailbox
# take longer than archiving it.


@dataclass(frozen=True)
class MailboxMix:
    """The share of each kind of message in a generated mailbox.

    What is left after HTML and attachments is plain text. ``large_share`` of
    the messages carry an attachment of ``large_bytes`` (a range); the other
    attachments are between 20 KB and ``small_max_bytes``.
    """

    html_share: float = 0.20
    attachment_share: float = 0.12
    large_share: float = 0.03
    small_max_bytes: int = 500_000
    large_bytes: tuple[int, int] = (1_000_000, 3_000_000)


REALISTIC = MailboxMix()
# For the 100,000-message polling run: the count matters, not the bytes.
SMALL = MailboxMix(attachment_share=0.05, large_share=0.0, small_max_bytes=200_000)


def _header(text: str, charset: str) -> str:
    if text.isascii():
        return text
    return Header(text, "iso-2022-jp" if charset == "iso-2022-jp" else "utf-8").encode()


def _address(person: Person, charset: str) -> str:
    return formataddr(
        (person.name, person.address),
        charset="iso-2022-jp" if charset == "iso-2022-jp" else "utf-8",
    )


def _text_part(text: str, charset: str, subtype: str = "plain") -> str:
    """A text part: ASCII and ISO-2022-JP as 7bit, other UTF-8 as base64."""
    if charset == "iso-2022-jp":
        body = text.encode("iso-2022-jp").decode("ascii")
        encoding = "7bit"
    elif text.isascii():
        body, encoding, charset = text, "7bit", "us-ascii"
    else:
        body = base64.encodebytes(text.encode()).decode("ascii")
        encoding = "base64"
    return (
        f'Content-Type: text/{subtype}; charset="{charset}"\n'
        f"Content-Transfer-Encoding: {encoding}\n\n{body}"
    )


class MailboxGenerator:
    """Makes distinct, realistic RFC 5322 messages, one thread at a time."""

    def __init__(self, seed: int, mix: MailboxMix = REALISTIC) -> None:
        self.rng = random.Random(seed)
        self.mix = mix
        self.people = people(self.rng, 600)
        self.people_cum = zipf_cumulative(len(self.people), 0.8)
        self.topic_cum = zipf_cumulative(len(TOPICS), 0.9)
        self._number = 0
        self._thread: list[tuple[str, str, Person, datetime, str]] = []
        self._topic: tuple[int, str] = (0, "")

    def _person(self) -> Person:
        return self.rng.choices(self.people, cum_weights=self.people_cum)[0]

    def message(self) -> bytes:
        """The next message: a reply in the current thread or a new thread."""
        rng = self.rng
        self._number += 1
        if not self._thread or rng.random() < 0.35 or len(self._thread) >= 30:
            self._thread = []
        sender = self._person()
        recipient = self._person()
        if self._thread:
            parent_id, root_subject, recipient, parent_date, lang = self._thread[-1]
            marker = "Re: " if lang == "en" or rng.random() < 0.5 else "返信: "
            subject = marker + root_subject
            date = parent_date + timedelta(minutes=rng.randint(5, 3000))
            references = [entry[0] for entry in self._thread][-10:]
        else:
            lang = sender.lang
            topic = rng.choices(range(len(TOPICS)), cum_weights=self.topic_cum)[0]
            self._topic = (topic, rng.choice(COMPANIES)[1])
            root_subject = subject = subject_for(rng, lang, topic, self._topic[1])
            date = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
            references = []
        topic, customer = self._topic
        domain = sender.address.split("@")[1]
        message_id = f"{self._number:x}.{rng.getrandbits(40):010x}@{domain}"
        text = body_for(
            rng,
            lang=lang,
            topic=topic,
            sender=sender,
            recipient=recipient,
            customer=customer,
            quote=bool(references),
        )
        charset = "iso-2022-jp" if lang == "ja" and rng.random() < 0.5 else "utf-8"
        headers = [
            f"From: {_address(sender, charset)}",
            f"To: {_address(recipient, charset)}",
        ]
        if rng.random() < 0.2:
            headers.append(f"Cc: {_address(self._person(), charset)}")
        headers += [
            f"Subject: {_header(subject, charset)}",
            f"Date: {format_datetime(date)}",
            f"Message-ID: <{message_id}>",
        ]
        if references:
            headers.append(f"In-Reply-To: <{references[-1]}>")
            headers.append("References: " + "\n ".join(f"<{r}>" for r in references))
        headers.append("MIME-Version: 1.0")
        kind = rng.random()
        boundary = f"=_{rng.getrandbits(64):016x}"
        if kind < self.mix.html_share:
            headers.append(
                f'Content-Type: multipart/alternative; boundary="{boundary}"'
            )
            body = (
                f"--{boundary}\n{_text_part(text, charset)}\n"
                f"--{boundary}\n{_text_part(html_for(text), 'utf-8', 'html')}\n"
                f"--{boundary}--\n"
            )
        elif kind < self.mix.html_share + self.mix.attachment_share:
            if rng.random() < self.mix.large_share / self.mix.attachment_share:
                size = rng.randint(*self.mix.large_bytes)
            else:
                size = rng.randint(20_000, self.mix.small_max_bytes)
            maintype, subtype, suffix = rng.choice(ATTACHMENT_KINDS)
            filename = attachment_name(rng, lang, topic, suffix)
            disposition = (
                f'attachment; filename="{filename}"'
                if filename.isascii()
                else f"attachment; filename*=utf-8''{quote(filename)}"
            )
            headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            payload = base64.encodebytes(rng.randbytes(size)).decode("ascii")
            body = (
                f"--{boundary}\n{_text_part(text, charset)}\n"
                f"--{boundary}\nContent-Type: {maintype}/{subtype}\n"
                f"Content-Disposition: {disposition}\n"
                f"Content-Transfer-Encoding: base64\n\n{payload}"
                f"--{boundary}--\n"
            )
        else:
            part = _text_part(text, charset)
            head, body = part.split("\n\n", 1)
            headers += head.split("\n")
        self._thread.append((message_id, root_subject, sender, date, lang))
        return ("\n".join(headers) + "\n\n" + body).encode("ascii")


def one_large_message(size: int, seed: int = 50) -> bytes:
    """A message of about ``size`` bytes (never more): one big attachment."""
    rng = random.Random(seed)
    head = (
        "From: Scanner <scanner@fabrikam.example.com>\n"
        "To: archive@northwind.example.com\n"
        "Subject: Scanned documents (large)\n"
        f"Date: {format_datetime(START)}\n"
        "Message-ID: <large-attachment@fabrikam.example.com>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="=_large"\n\n'
        "--=_large\nContent-Type: text/plain; charset=us-ascii\n\n"
        "The scanned documents are attached.\n"
        "--=_large\nContent-Type: application/pdf\n"
        'Content-Disposition: attachment; filename="scans.pdf"\n'
        "Content-Transfer-Encoding: base64\n\n"
    )
    tail = "--=_large--\n"
    # base64 turns 57 bytes into a 77-byte line.
    room = size - len(head) - len(tail)
    payload = base64.encodebytes(rng.randbytes(room // 77 * 57)).decode("ascii")
    return (head + payload + tail).encode("ascii")
