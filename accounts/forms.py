"""The mail account form and the site's fetch switch."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from . import providers
from .models import MailAccount
from .services.mail_accounts import starttls_applies
from .services.signin import provider_choices


class MailAccountForm(forms.ModelForm):
    """Add or edit an account. The password is never rendered back.

    On edit, a blank password keeps the stored one, unless the account is
    pointed at another server or user: the service then asks for it again. A
    blank port becomes the protocol's standard port (the page's script fills it
    in as the protocol changes; without script the server does). Choosing a
    provider to sign in with prefills its mail server (by script) and needs no
    password: saving leads on to the provider's sign-in.
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
            "auth_method",
            "protocol",
            "host",
            "port",
            "username",
            "password",
            "starttls",
            "folder",
            "oauth2_scopes",
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
            "auth_method": _(
                "Microsoft 365 and Google no longer accept passwords for IMAP "
                "and POP: sign in with them instead. Saving leads on to the "
                "provider's sign-in page."
            ),
            "oauth2_scopes": _(
                "Leave blank for the provider's usual scopes. Separate scopes "
                "with spaces."
            ),
            "enabled": _("Polled on schedule. Disabled accounts are left alone."),
        }

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        self.fields["port"].required = False
        self.fields["folder"].required = False
        self.fields["password"].required = False
        if editing:
            self.fields["password"].help_text = _(
                "Leave blank to keep the stored password. Changing the protocol, "
                "host, port, user name or STARTTLS needs it again."
            )
        self.fields["protocol"].widget.attrs["data-default-ports"] = ",".join(
            f"{name}:{port}" for name, port in MailAccount.DEFAULT_PORTS.items()
        )
        offered = [(c.key, c.label) for c in provider_choices()]
        current = self.instance.auth_method if self.instance else ""
        if current and current not in dict(offered):
            # A provider the site stopped offering stays visible on its accounts.
            offered.append((current, self.instance.get_auth_method_display()))
        auth = self.fields["auth_method"]
        auth.choices = offered
        # Forms posted without it (scripts, older pages) sign in with a password.
        auth.required = False
        auth.widget.attrs["data-mail-servers"] = json.dumps(
            {
                key: servers
                for key, servers in _mail_servers().items()
                if key in dict(offered)
            }
        )
        if len(offered) == 1:
            auth.widget = forms.HiddenInput()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        protocol = data.get("protocol")
        method = data.get("auth_method") or MailAccount.AuthMethod.PASSWORD
        data["auth_method"] = method
        if method != MailAccount.AuthMethod.PASSWORD:
            data["password"] = ""
        elif not self.editing and not data.get("password"):
            self.add_error("password", _("Enter the mailbox's password."))
        if not data.get("port") and protocol in MailAccount.DEFAULT_PORTS:
            data["port"] = MailAccount.DEFAULT_PORTS[protocol]
        if data.get("starttls") and protocol and not starttls_applies(protocol):
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


def _mail_servers() -> dict[str, list[dict[str, Any]]]:
    """Each configured provider's mail servers, for the form's script."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key in providers.provider_keys_configured():
        if key == providers.CUSTOM:
            # Discovery would cost a request per page view and names no mail
            # server anyway.
            continue
        try:
            provider = providers.provider_get(key)
        except providers.ProviderError:
            continue
        found[key] = [
            {"protocol": s.protocol, "host": s.host, "port": s.port}
            for s in provider.mail_servers
        ]
    return found


class FetchSettingsForm(forms.Form):
    automatic_polling = forms.BooleanField(
        label=_("Poll mail accounts automatically"), required=False
    )


class AlertPreferenceForm(forms.Form):
    email_alerts = forms.BooleanField(
        label=_("Send me alert e-mails about the mail accounts I administer"),
        required=False,
    )
