"""The Japanese interface: pages, the language switcher, and the catalogue itself.

The catalogue tests read ``locale/ja/LC_MESSAGES/django.po`` and the compiled
``django.mo`` that is committed next to it, and extract the marked strings of
the project afresh (in a copy, so the committed files are never touched) to
find strings that were marked but never translated.
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from mailarchive.services import message_ingest
from tests.conftest import Actors, client_for

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "ja" / "LC_MESSAGES"
PO_FILE = LOCALE_DIR / "django.po"
MO_FILE = LOCALE_DIR / "django.mo"
# The same folders `make messages` leaves out, plus what is not source.
NOT_SOURCE = (".venv", "var", "bench", ".git", "locale", "__pycache__", "*.pyc")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}|<[^>]+>")
JA = {"headers": {"accept-language": "ja"}}


@dataclass
class PoEntry:
    """One entry of a .po file (``msgstr`` holds every plural form, in order)."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        """The catalogue key gettext uses: ``context\\x04msgid`` with a context."""
        if self.msgctxt is None:
            return self.msgid
        return f"{self.msgctxt}\x04{self.msgid}"


def read_po(path: Path) -> list[PoEntry]:
    """The live entries of a .po file, header included (obsolete ones left out)."""
    entries: list[PoEntry] = []
    entry = PoEntry()
    target: tuple[str, int | None] | None = None
    started = False
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = line.strip()
        if not line:
            if started:
                entries.append(entry)
            entry, target, started = PoEntry(), None, False
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            assert target is not None, f"continuation without keyword in {path}"
            _append(entry, target, ast.literal_eval(line))
        else:
            keyword, _, value = line.partition(" ")
            match = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            if match:
                target = ("msgstr", int(match.group(1)))
                entry.msgstr.append("")
            elif keyword == "msgstr":
                target = ("msgstr", 0)
                entry.msgstr.append("")
            else:
                target = (keyword, None)
                setattr(entry, keyword, "")
            started = True
            _append(entry, target, ast.literal_eval(value))
    return entries


def _append(entry: PoEntry, target: tuple[str, int | None], text: str) -> None:
    name, index = target
    if name == "msgstr":
        assert index is not None
        entry.msgstr[index] += text
    else:
        setattr(entry, name, getattr(entry, name) + text)


def raw_message(subject: str) -> bytes:
    """A small RFC 5322 message, as a mail server would hand it over."""
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "team@example.com"
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2024, 3, 1, 9, 0, tzinfo=UTC))
    message["Message-ID"] = "<i18n-1@example.com>"
    message.set_content("Hello team.\n")
    return bytes(message)


def page(client: Client, url: str, **kwargs: object) -> str:
    """The text of a page that must answer 200."""
    response = client.get(url, **kwargs)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def assert_japanese(text: str, japanese: list[str], english: list[str]) -> None:
    """Every Japanese string appears and none of the English ones does."""
    assert 'lang="ja"' in text
    missing = [s for s in japanese if s not in text]
    assert not missing, f"Japanese strings missing: {missing}"
    left = [s for s in english if s in text]
    assert not left, f"English strings left: {left}"


# Pages ----------------------------------------------------------------------


@pytest.mark.django_db
def test_login_page_follows_the_browser_language() -> None:
    text = page(Client(), reverse("login"), **JA)
    assert_japanese(
        text,
        japanese=["ログイン", "ユーザー名", "パスワード", "本文へスキップ"],
        english=["Log in", "User name", "Password", "Skip to content"],
    )


@pytest.mark.django_db
def test_login_page_stays_english_for_english_browsers() -> None:
    """GIVEN an English browser WHEN it opens the login page THEN it is English
    (so the Japanese assertions above can tell the two apart)."""
    text = page(Client(), reverse("login"), headers={"accept-language": "en"})
    assert 'lang="en"' in text
    assert "User name" in text
    assert "ユーザー名" not in text


def test_space_home_in_japanese(actors: Actors) -> None:
    client = client_for(actors, "admin")
    text = page(client, actors.space.get_absolute_url(), **JA)
    assert_japanese(
        text,
        japanese=[
            "スペース",
            "ゴミ箱",
            "メールアカウント",
            "メールのインポート",
            "権限",
        ],
        english=["Trash", "Mail accounts", "Import mail", "Permissions", "Log out"],
    )


def test_mail_list_and_message_in_japanese(actors: Actors) -> None:
    result = message_ingest(
        space_id=actors.space.pk, raw=raw_message("Quarterly numbers"), source="import"
    )
    client = client_for(actors, "admin")
    key = actors.space.key
    text = page(client, reverse("mailarchive:mail-list", kwargs={"key": key}), **JA)
    assert "Quarterly numbers" in text
    assert_japanese(
        text,
        japanese=["件名", "差出人", "日時", "月別", "すべてのメールを削除"],
        english=["Subject", "Sort", "Per page", "Delete all mail", "Months"],
    )
    detail = reverse(
        "mailarchive:message-detail",
        kwargs={"key": key, "message_pk": result.message_pk},
    )
    text = page(client, detail, **JA)
    assert_japanese(
        text,
        japanese=[
            "宛先",
            "パーマリンク",
            "ソースを表示",
            "このメッセージをゴミ箱に移動しますか？",
        ],
        english=["Permalink", "Raw source", "Move this message to the trash?"],
    )


def test_search_form_tells_date_from_sender(actors: Actors) -> None:
    """GIVEN the search form in Japanese THEN "From" the date and "From" the
    sender header read differently (the date label has its own context)."""
    client = client_for(actors, "viewer")
    url = reverse("mailarchive:space-search", kwargs={"key": actors.space.key})
    text = page(client, url, **JA)
    assert '<label for="id_date_from">開始日</label>' in text
    assert '<label for="id_date_to">終了日</label>' in text
    assert '<label for="id_sender">差出人</label>' in text


# The language switcher ------------------------------------------------------


@pytest.mark.django_db
def test_language_switcher_switches_to_japanese() -> None:
    """GIVEN an English page WHEN its switcher posts "ja" THEN the next pages are
    Japanese without any Accept-Language header."""
    client = Client()
    text = page(client, reverse("login"))
    assert f'action="{reverse("set_language")}"' in text
    assert '<option value="ja">日本語</option>' in text
    response = client.post(
        reverse("set_language"), {"language": "ja", "next": reverse("login")}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ja"
    text = page(client, reverse("login"))
    assert_japanese(text, japanese=["ログイン"], english=["Log in"])
    assert '<option value="ja" selected>日本語</option>' in text


# The catalogue --------------------------------------------------------------


def test_catalogue_header_is_japanese() -> None:
    header = read_po(PO_FILE)[0]
    assert header.msgid == ""
    assert "fuzzy" not in header.flags
    fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if line)
    assert fields["Language"] == "ja"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert fields["Plural-Forms"] == "nplurals=1; plural=0;"


def test_every_entry_is_translated_and_keeps_its_placeholders() -> None:
    entries = read_po(PO_FILE)[1:]
    assert entries, "the Japanese catalogue is empty"
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    assert not fuzzy, f"fuzzy entries: {fuzzy}"
    empty = [e.msgid for e in entries if not all(e.msgstr) or not e.msgstr]
    assert not empty, f"untranslated entries: {empty}"
    plural_forms = [e.msgid for e in entries if e.msgid_plural and len(e.msgstr) != 1]
    assert not plural_forms, f"Japanese has one plural form: {plural_forms}"
    for entry in entries:
        wanted = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        for text in entry.msgstr:
            assert sorted(PLACEHOLDER.findall(text)) == wanted, (entry.msgid, text)


def test_compiled_catalogue_matches_the_po_file() -> None:
    """The committed .mo is compiled from the committed .po (run `make messages`
    after editing the .po)."""
    with MO_FILE.open("rb") as mo:
        catalog = gettext.GNUTranslations(mo)._catalog
    expected: dict[object, str] = {}
    for entry in read_po(PO_FILE)[1:]:
        if entry.msgid_plural is None:
            expected[entry.key] = entry.msgstr[0]
        else:
            for index, text in enumerate(entry.msgstr):
                expected[(entry.key, index)] = text
    compiled = {k: v for k, v in catalog.items() if k != ""}
    assert compiled == expected


def test_every_marked_string_is_in_the_catalogue(tmp_path: Path, monkeypatch) -> None:
    """GIVEN the project's sources as they are now WHEN their marked strings are
    extracted afresh THEN each one has a translation in the committed .mo.

    Fails when a string was added or changed without `make messages` and a
    translation. Needs gettext's xgettext, like `make messages`.
    """
    if shutil.which("xgettext") is None:
        pytest.fail("xgettext not found: install gettext to check the catalogue")
    source = tmp_path / "src"
    shutil.copytree(
        settings.BASE_DIR, source, ignore=shutil.ignore_patterns(*NOT_SOURCE)
    )
    fresh_dir = source / "locale"
    fresh_dir.mkdir()
    monkeypatch.chdir(source)
    with override_settings(LOCALE_PATHS=[fresh_dir]):
        call_command(
            "makemessages",
            locale=["ja"],
            verbosity=0,
            no_obsolete=True,
        )
    with MO_FILE.open("rb") as mo:
        translations = gettext.GNUTranslations(mo)
    missing = []
    for entry in read_po(fresh_dir / "ja" / "LC_MESSAGES" / "django.po")[1:]:
        if entry.msgid_plural is None:
            text = translations._catalog.get(entry.key)
        else:
            text = translations._catalog.get((entry.key, 0))
        if not text:
            missing.append(entry.key)
    assert not missing, f"marked but not translated (run `make messages`): {missing}"


@pytest.mark.parametrize("language", ["en", "ja"])
def test_one_date_format_per_language(language):
    """However a template shows a moment (default rendering, DATETIME_FORMAT,
    SHORT_DATETIME_FORMAT), it reads the same; months in the language's way."""
    from django.template import Context, Template
    from django.utils import timezone, translation

    moment = datetime(2025, 1, 5, 19, 47, tzinfo=UTC)
    template = Template(
        '{{ m }}|{{ m|date:"DATETIME_FORMAT" }}|{{ m|date:"SHORT_DATETIME_FORMAT" }}'
        '|{{ m|date:"Y-m-d H:i" }}|{{ m|date:"YEAR_MONTH_FORMAT" }}'
    )
    with translation.override(language), timezone.override(UTC):
        shown = template.render(Context({"m": moment})).split("|")
    assert len(set(shown[:4])) == 1, shown
    assert shown[0] == "2025-01-05 19:47"
    assert shown[4] == {"en": "January 2025", "ja": "2025年1月"}[language]
