"""The OpenAPI schema and the interactive documentation, served by the site
itself (no content from elsewhere), and the answer for unknown API URLs."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# The documentation pages load their scripts and styles from this site only;
# the schema they render is fetched from it too.
DOCS_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 schema, as JSON."""

    renderer_classes = [OpenApiJsonRenderer]


class _WithPolicy:
    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_POLICY
        return response


class SwaggerView(_WithPolicy, SpectacularSwaggerSplitView):
    """Swagger UI: try the API from the browser (the session signs requests in)."""

    url_name = "api:schema"


class RedocView(_WithPolicy, SpectacularRedocView):
    """Redoc: the reference, to read."""

    url_name = "api:schema"
    template_name = "api/redoc.html"


class NotFoundView(APIView):
    """Any other URL under the API: a 404 problem, not an HTML page."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise exceptions.NotFound

    post = put = patch = delete = get


class ApiRootView(APIView):
    """Where to start: links to the resources and the documentation."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return request.build_absolute_uri(reverse(f"api:{name}"))

        return Response(
            {
                "spaces": link("space-list"),
                "search": link("search"),
                "me": link("me"),
                "schema": link("schema"),
                "docs": link("docs"),
                "redoc": link("redoc"),
            }
        )
