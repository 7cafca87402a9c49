"""Forms of the mail import pages: a browser upload, a file from the server."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .imports import (
    ImportPathError,
    import_check_head,
    import_dir_files,
    import_dir_resolve,
)
from .mbox import MboxFormatError

# Enough of the start of a file to tell an mbox from a message from anything else.
HEAD_BYTES = 65536


def too_large_error(limit: int) -> forms.ValidationError:
    """The error of a file past the upload limit of ``limit`` bytes."""
    return forms.ValidationError(
        gettext(
            "This file is larger than the upload limit of %(limit)s. Put large "
            "files in the server import directory instead."
        ),
        params={"limit": filesizeformat(limit)},
        code="too_large",
    )


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("Mail file"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.MAILARCHIVE_MAX_UPLOAD_BYTES
        field = self.fields["file"]
        field.help_text = gettext(
            "An mbox file (.mbox), a gzip-compressed one (.mbox.gz) or a single "
            "message (.eml), at most %(limit)s."
        ) % {"limit": filesizeformat(limit)}
        # The page's script checks the size before sending; the server
        # checks it again as the file arrives.
        field.widget.attrs["data-max-bytes"] = str(limit)
        field.widget.attrs["data-too-large"] = too_large_error(limit).messages[0]

    def clean_file(self) -> UploadedFile:
        """Refuse at once what is plainly no mail file; the import checks the rest."""
        upload: UploadedFile = self.cleaned_data["file"]
        limit = settings.MAILARCHIVE_MAX_UPLOAD_BYTES
        if upload.size is not None and upload.size > limit:
            raise too_large_error(limit)
        head = upload.read(HEAD_BYTES)
        upload.seek(0)
        try:
            import_check_head(head)
        except MboxFormatError as e:
            raise forms.ValidationError(
                gettext("This file cannot be imported: %(reason)s."),
                params={"reason": str(e)},
                code="bad_file",
            ) from e
        return upload


class ImportServerFileForm(forms.Form):
    name = forms.ChoiceField(label=_("File on the server"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].choices = [
            (f.name, f"{f.name} ({filesizeformat(f.size)})") for f in import_dir_files()
        ]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        # The listing already leaves out what is outside; the path is resolved
        # again here, when the import is queued and when it runs.
        try:
            import_dir_resolve(name)
        except ImportPathError as e:
            raise forms.ValidationError(str(e), code="bad_path") from e
        return name
