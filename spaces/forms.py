"""Forms of the space pages."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Level, Space, space_key_validator
from .selectors import group_by_name, user_by_name


class SpaceUpdateForm(forms.Form):
    """A space's name, description and anonymous access (the key never changes)."""

    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    allow_anonymous = forms.BooleanField(
        label=_("Anonymous users may view this space"), required=False
    )


class SpaceCreateForm(SpaceUpdateForm):
    field_order = ["key", "name", "description", "allow_anonymous"]

    key = forms.CharField(
        label=_("Space key"),
        max_length=64,
        validators=[space_key_validator],
        help_text=_("Upper-case letters and digits, e.g. SALES. Cannot be changed."),
    )

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if Space.objects.filter(key=key).exists():
            raise forms.ValidationError(_("A space with this key exists already."))
        return key


class SpaceKeyConfirmForm(forms.Form):
    """Confirms a step that cannot be undone: the admin types the space key."""

    confirm_key = forms.CharField(label=_("Type the space key to confirm"))

    def __init__(self, *args: object, space_key: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.space_key = space_key

    def clean_confirm_key(self) -> str:
        value = self.cleaned_data["confirm_key"].strip()
        if value != self.space_key:
            raise forms.ValidationError(
                _("That is not the key of this space (%(key)s).")
                % {"key": self.space_key}
            )
        return value


class GrantForm(forms.Form):
    principal = forms.CharField(
        label=_("User or group name"),
        max_length=150,
        help_text=_("A user name, or a group name prefixed with “group:”."),
    )
    level = forms.TypedChoiceField(
        label=_("Permission"), choices=Level.choices, coerce=int
    )

    def clean_principal(self) -> str:
        value = self.cleaned_data["principal"].strip()
        if value.startswith("group:"):
            name = value.removeprefix("group:").strip()
            group = group_by_name(name)
            if group is None:
                raise forms.ValidationError(_("No group is called “%s”.") % name)
            self.cleaned_data["group"] = group
        else:
            user = user_by_name(value)
            if user is None:
                raise forms.ValidationError(_("No user is called “%s”.") % value)
            self.cleaned_data["user"] = user
        return value
