"""Spaces the caller may see, and who the caller is."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spaces.selectors import space_levels_for, spaces_visible_to

from ..models import ApiToken
from ..serializers import MeSerializer, SpaceListSerializer, SpaceSerializer
from .base import problems, space_for


class SpaceListView(APIView):
    @extend_schema(
        operation_id="spaces_list",
        summary="Spaces the caller may see",
        description="By name. Without credentials: the spaces open to "
        "anonymous visitors.",
        responses={200: SpaceListSerializer, **problems(401, 429)},
        tags=["spaces"],
    )
    def get(self, request: Request) -> Response:
        spaces = list(spaces_visible_to(request.user))
        context = {
            "request": request,
            "levels": space_levels_for(request.user, spaces),
        }
        return Response(
            {"results": SpaceSerializer(spaces, many=True, context=context).data}
        )


class SpaceDetailView(APIView):
    @extend_schema(
        operation_id="space_retrieve",
        summary="A space",
        responses={200: SpaceSerializer, **problems(401, 404, 429)},
        tags=["spaces"],
    )
    def get(self, request: Request, key: str) -> Response:
        space = space_for(request, key)
        context = {
            "request": request,
            "levels": space_levels_for(request.user, [space]),
        }
        return Response(SpaceSerializer(space, context=context).data)


class MeView(APIView):
    @extend_schema(
        operation_id="me_retrieve",
        summary="Who the caller is",
        responses={200: MeSerializer, **problems(401, 429)},
        tags=["spaces"],
    )
    def get(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            raise exceptions.NotAuthenticated
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(
            MeSerializer(
                {
                    "username": request.user.get_username(),
                    "site_admin": request.user.is_superuser,
                    "authenticated_by": "token" if token else "session",
                    "token": token,
                }
            ).data
        )
