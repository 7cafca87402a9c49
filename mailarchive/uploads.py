"""The upload limit, enforced while a request body streams in.

Django hands each chunk of an uploaded file to its upload handlers in turn;
this one comes first and stops the upload once the file passes
``MAILARCHIVE_MAX_UPLOAD_BYTES``, before the handlers after it write the
chunk to memory or disk. A request that declares a larger body than the
limit allows is stopped as soon as its file begins, without reading it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

# Room for the form's other fields and the multipart boundaries and headers.
ENVELOPE_BYTES = 64 * 1024
_REFUSED = "mailarchive_upload_refused"


def upload_refused(request: HttpRequest) -> int | None:
    """The limit an upload of ``request`` went past, or None when none did."""
    return getattr(request, _REFUSED, None)


class UploadLimitHandler(FileUploadHandler):
    """Stops an uploaded file at ``MAILARCHIVE_MAX_UPLOAD_BYTES``.

    Marks the request (see ``upload_refused``) so that the view can say why
    the file is missing. Holds no data itself.
    """

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        self.limit = settings.MAILARCHIVE_MAX_UPLOAD_BYTES
        self.declared = content_length
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0
        if self.declared > self.limit + ENVELOPE_BYTES:
            # Reading gigabytes only to refuse them helps no one; the client
            # may see the connection close before it has sent everything.
            self._refuse(connection_reset=True)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            # What is left of the body is at most the envelope: read and
            # dropped, so that the answer reaches the client.
            self._refuse(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None

    def _refuse(self, *, connection_reset: bool) -> None:
        setattr(self.request, _REFUSED, self.limit)
        raise StopUpload(connection_reset=connection_reset)
