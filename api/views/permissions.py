"""Who may do what in a space, for its admins."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spaces.models import Level
from spaces.selectors import group_by_name, space_permissions_list, user_by_name
from spaces.services import space_permission_grant, space_permission_revoke

from ..serializers import (
    LEVELS_BY_NAME,
    GrantListSerializer,
    GrantSerializer,
    GrantWriteSerializer,
)
from .base import problems, space_for, validated

TAGS = ["permissions"]


class GrantListView(APIView):
    @extend_schema(
        operation_id="permissions_list",
        summary="The grants of a space",
        description="Space admins only. Levels: view (browse and read), delete "
        "(also move mail to the trash), admin (also mail accounts, imports, "
        "permissions); each includes the ones before it.",
        responses={200: GrantListSerializer, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def get(self, request: Request, key: str) -> Response:
        space = space_for(request, key, Level.ADMIN)
        context = {"request": request, "space_key": space.key}
        grants = space_permissions_list(space)
        return Response(
            {"results": GrantSerializer(grants, many=True, context=context).data}
        )

    @extend_schema(
        operation_id="permission_grant",
        summary="Give a user or a group a level",
        description="Replaces the level they had. Audit-logged.",
        request=GrantWriteSerializer,
        responses={201: GrantSerializer, **problems(400, 401, 403, 404, 429)},
        tags=TAGS,
    )
    def post(self, request: Request, key: str) -> Response:
        space = space_for(request, key, Level.ADMIN)
        data = validated(GrantWriteSerializer, request.data)
        user = group = None
        if data.get("user"):
            user = user_by_name(data["user"])
            if user is None:
                raise exceptions.ValidationError(
                    {"user": [_("No user is called “%s”.") % data["user"]]}
                )
        else:
            group = group_by_name(data["group"])
            if group is None:
                raise exceptions.ValidationError(
                    {"group": [_("No group is called “%s”.") % data["group"]]}
                )
        grant = space_permission_grant(
            space=space,
            level=LEVELS_BY_NAME[data["level"]],
            user=user,
            group=group,
            actor=request.user,
        )
        context = {"request": request, "space_key": space.key}
        body = GrantSerializer(grant, context=context).data
        return Response(body, status=201, headers={"Location": body["url"]})


class GrantDetailView(APIView):
    @extend_schema(
        operation_id="permission_revoke",
        summary="Remove a grant",
        description="Audit-logged. Removing a grant that is gone already is no error.",
        responses={204: None, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def delete(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        space_permission_revoke(grant_id=id, space=space, actor=request.user)
        return Response(status=204)
