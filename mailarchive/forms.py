"""Forms of the reading pages: list options, search, trash, time zone."""

from __future__ import annotations

import zoneinfo
from datetime import date
from functools import cache
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .models import ReadingPreference
from .search import MailSearch, Order
from .selectors import DEFAULT_PAGE_SIZE, PAGE_SIZES, Sort, ThreadOrder

PAGE_SIZE_CHOICES = [(str(n), str(n)) for n in PAGE_SIZES]
SORT_CHOICES = [
    (Sort.NEWEST.value, _("Newest first")),
    (Sort.OLDEST.value, _("Oldest first")),
    (Sort.SENDER.value, _("Sender")),
    (Sort.SUBJECT.value, _("Subject")),
]
ORDER_CHOICES = [
    (Order.NEWEST.value, _("Newest first")),
    (Order.RELEVANCE.value, _("Best match")),
]


class CursorField(forms.CharField):
    """A page cursor: URL-safe base64 only (its content is checked on use)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            required=False,
            max_length=2000,
            validators=[RegexValidator(r"^[A-Za-z0-9_-]*\Z")],
            **kwargs,
        )


class MonthField(forms.CharField):
    """A month written ``YYYY-MM``, cleaned to the first day of that month."""

    def to_python(self, value: object) -> date | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            year, month = (int(part) for part in text.split("-"))
            return date(year, month, 1)
        except (ValueError, OverflowError) as exc:
            raise ValidationError(_("Give a month as YYYY-MM."), code="month") from exc


class MailListForm(forms.Form):
    """The query string of the mail list. Every field may be left out."""

    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, label=_("Sort"))
    month = MonthField(required=False, label=_("Month"))
    sender = forms.CharField(required=False, max_length=320, label=_("Sender"))
    size = forms.TypedChoiceField(
        choices=PAGE_SIZE_CHOICES,
        coerce=int,
        required=False,
        empty_value=DEFAULT_PAGE_SIZE,
        label=_("Per page"),
    )
    view = forms.ChoiceField(
        choices=ReadingPreference.MailView.choices, required=False, label=_("Show")
    )
    after = CursorField()
    before = CursorField()
    last = forms.BooleanField(required=False)

    def __init__(self, data: QueryDict | None = None, **kwargs: Any) -> None:
        # The choices shown are those in effect, also when the address leaves
        # them out: a bound field shows only what the query string holds.
        if data is not None:
            data = data.copy()
            if not data.get("size"):
                data["size"] = str(DEFAULT_PAGE_SIZE)
        super().__init__(data, **kwargs)

    def clean_sort(self) -> Sort:
        return Sort(self.cleaned_data["sort"] or Sort.NEWEST)


class MailViewForm(forms.Form):
    """The choice between the list of messages and the list of conversations."""

    view = forms.ChoiceField(choices=ReadingPreference.MailView.choices)
    next = forms.CharField(required=False, max_length=2000)


THREAD_ORDER_CHOICES = [
    (ThreadOrder.DATE.value, _("By date")),
    (ThreadOrder.TREE.value, _("As a tree")),
]


class ThreadPageForm(forms.Form):
    """The query string of a thread page. Every field may be left out."""

    order = forms.ChoiceField(
        choices=THREAD_ORDER_CHOICES, required=False, label=_("Order")
    )
    page = forms.IntegerField(
        required=False, min_value=1, max_value=1_000_000, label=_("Page")
    )
    message = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, label=_("Message")
    )

    def clean_order(self) -> ThreadOrder:
        return ThreadOrder(self.cleaned_data["order"] or ThreadOrder.DATE)


class SearchForm(forms.Form):
    """A search: text, filters, order, and where in the results the page starts."""

    q = forms.CharField(required=False, max_length=500, label=_("Search"))
    sender = forms.CharField(required=False, max_length=320, label=_("Sender"))
    date_from = forms.DateField(
        required=False,
        # "From" alone is also the sender header; the context keeps them apart.
        label=pgettext_lazy("start of a date range", "From"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        required=False,
        label=_("Until"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    has_attachment = forms.BooleanField(required=False, label=_("Has attachments"))
    in_attachments = forms.BooleanField(
        required=False, label=_("Only inside attachments")
    )
    order = forms.ChoiceField(choices=ORDER_CHOICES, required=False, label=_("Order"))
    space = forms.ChoiceField(required=False, label=_("Space"))
    after = CursorField()
    before = CursorField()
    page = forms.IntegerField(required=False, min_value=1, max_value=1000)

    def __init__(
        self, *args: object, space_choices: list[tuple[str, str]] | None = None, **kw
    ) -> None:
        super().__init__(*args, **kw)
        if space_choices is None:
            del self.fields["space"]
        else:
            self.fields["space"].choices = [("", _("All spaces")), *space_choices]

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise ValidationError(_("The start date is after the end date."))
        return cleaned

    def mail_search(self) -> MailSearch:
        """The search the valid form asks for."""
        data = self.cleaned_data
        return MailSearch(
            text=data.get("q", "").strip(),
            sender=data.get("sender", "").strip(),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            has_attachment=bool(data.get("has_attachment")),
            order=Order(data.get("order") or Order.NEWEST),
            in_attachments=bool(data.get("in_attachments")),
        )


class TrashActionForm(forms.Form):
    """Restore or purge messages of the trash: the ticked ones, or all of it."""

    ACTIONS = [
        ("restore", _("Restore")),
        ("purge", _("Delete for good")),
        ("restore_all", _("Restore everything")),
        ("empty", _("Empty the trash")),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    messages = forms.TypedMultipleChoiceField(coerce=int, required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Any message id is accepted here; the service acts only on the trash of
        # the space at hand.
        values = self.data.getlist("messages") if hasattr(self.data, "getlist") else []
        self.fields["messages"].choices = [(v, v) for v in values if v.isdigit()]

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("action") in ("restore", "purge") and not cleaned.get(
            "messages"
        ):
            raise ValidationError(_("Tick the messages first."))
        return cleaned


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    names = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
    return [(name, name.replace("_", " ")) for name in names]


class TimeZoneForm(forms.Form):
    """The time zone dates are shown in, kept in a cookie."""

    time_zone = forms.ChoiceField(label=_("Time zone"))
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices()
