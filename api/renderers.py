"""Renderers: JSON, problem details, and files that views stream themselves."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer


class ProblemJSONRenderer(JSONRenderer):
    """Lets clients ask for ``application/problem+json`` explicitly."""

    media_type = "application/problem+json"
    format = "problem"


class FileRenderer(BaseRenderer):
    """For views that answer with a file (raw message, attachment, mbox).

    Such views return the response themselves; this renderer only lets any
    Accept header through and renders their error bodies as JSON.
    """

    media_type = "*/*"
    format = "file"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        return json.dumps(data, ensure_ascii=False).encode()


FILE_RENDERERS = [JSONRenderer, FileRenderer]
