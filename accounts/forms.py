"""The mail account form and the site's fetch switch."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import MailAccount
from .services.mail_accounts import STARTTLS_PROTOCOLS


class MailAccountForm(forms.ModelForm):
    """Add or edit an account. The password is never rendered back.

    On edit, a blank password keeps the stored one, unless the account is
    pointed at another server or user: the service then asks for it again. A
    blank port becomes the protocol's standard port (the page's script fills it
    in as the protocol changes; without script the server does).
    """

    password = forms.CharField(
        label=_("password"),
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = MailAccount
        fields = [
            "name",
            "description",
            "protocol",
            "host",
            "port",
            "username",
            "password",
            "starttls",
            "folder",
            "enabled",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "port": forms.NumberInput(attrs={"min": 1, "max": 65535}),
        }
        help_texts = {
            "name": _("How the account is shown, e.g. “Sales (clone)”."),
            "host": _("The mail server's name, e.g. mail.example.org."),
            "port": _("Leave blank for the protocol's standard port."),
            "starttls": _(
                "For POP and IMAP: encrypt the connection before logging in. "
                "Without it the password crosses the network in clear."
            ),
            "folder": _("IMAP only; POP always reads the inbox."),
            "enabled": _("Polled on schedule. Disabled accounts are left alone."),
        }

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["port"].required = False
        self.fields["folder"].required = False
        if editing:
            self.fields["password"].required = False
            self.fields["password"].help_text = _(
                "Leave blank to keep the stored password. Changing the protocol, "
                "host, port, user name or STARTTLS needs it again."
            )
        self.fields["protocol"].widget.attrs["data-default-ports"] = ",".join(
            f"{name}:{port}" for name, port in MailAccount.DEFAULT_PORTS.items()
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        protocol = data.get("protocol")
        if not data.get("port") and protocol in MailAccount.DEFAULT_PORTS:
            data["port"] = MailAccount.DEFAULT_PORTS[protocol]
        if data.get("starttls") and protocol and protocol not in STARTTLS_PROTOCOLS:
            self.add_error(
                "starttls",
                _(
                    "STARTTLS applies to POP and IMAP; POPS and IMAPS are "
                    "encrypted from the start."
                ),
            )
        if not data.get("folder"):
            data["folder"] = "INBOX"
        return data

    def changes(self) -> dict[str, Any]:
        """The cleaned model fields, as the services take them."""
        return {
            name: self.cleaned_data[name]
            for name in self.Meta.fields
            if name != "password" and name in self.cleaned_data
        }


class FetchSettingsForm(forms.Form):
    automatic_polling = forms.BooleanField(
        label=_("Poll mail accounts automatically"), required=False
    )
