"""Forms of the users pages: a new user, a password set by a site admin."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _


class _PasswordOrGenerated(forms.Form):
    """A password field that may be left blank for a generated password."""

    password = forms.CharField(
        label=_("Initial password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Leave blank to generate one; it is shown once, after saving. The "
            "user can change it on their own password page."
        ),
    )

    def _password_user(self) -> Any:
        raise NotImplementedError

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if password:
            password_validation.validate_password(password, self._password_user())
        return password


class UserCreateForm(_PasswordOrGenerated):
    username = forms.CharField(
        label=_("User name"),
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text=_("Letters, digits and @ . + - _ only."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    email = forms.EmailField(label=_("E-mail address"), required=False)
    site_admin = forms.BooleanField(
        label=_("Site admin (may do everything, everywhere)"), required=False
    )
    field_order = ["username", "email", "site_admin", "password"]

    def _password_user(self) -> Any:
        return get_user_model()(
            username=self.cleaned_data.get("username", ""),
            email=self.cleaned_data.get("email", ""),
        )


class PasswordResetForm(_PasswordOrGenerated):
    """A new password for a user, chosen by a site admin."""

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["password"].label = _("New password")

    def _password_user(self) -> Any:
        return self.user
