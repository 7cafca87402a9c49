"""A space's mail accounts, for its admins: health, changes, tests, polls."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import MailAccount, PollRun
from accounts.selectors import (
    mail_account_get,
    mail_account_health_get,
    mail_accounts_of_space,
    poll_run_get,
)
from accounts.services import (
    mail_account_create,
    mail_account_delete,
    mail_account_fetch_request,
    mail_account_set_enabled,
    mail_account_test,
    mail_account_update,
)
from accounts.services.fetching import FetchDisabledError
from spaces.models import Level, Space

from ..problems import Conflict, validation_errors
from ..serializers import (
    ConnectionTestSerializer,
    EnabledSerializer,
    MailAccountListSerializer,
    MailAccountSerializer,
    MailAccountUpdateSerializer,
    PollRunSerializer,
    api_url,
)
from .base import problems, space_for, validated

TAGS = ["mail accounts"]


def _account_or_404(space: Space, account_id: int) -> MailAccount:
    try:
        return mail_account_get(space, account_id)
    except Http404:
        raise exceptions.NotFound(_("No such mail account.")) from None


def _shown(request: Request, space: Space, account_id: int, status: int = 200):
    """The account as the list shows it (health and latest poll included)."""
    account = mail_account_health_get(space, account_id)
    if account is None:
        raise exceptions.NotFound(_("No such mail account."))
    context = {"request": request, "space_key": space.key}
    return Response(MailAccountSerializer(account, context=context).data, status=status)


class MailAccountListView(APIView):
    @extend_schema(
        operation_id="mail_accounts_list",
        summary="A space's mail accounts, with their health",
        description="Space admins only. Passwords are never returned.",
        responses={200: MailAccountListSerializer, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def get(self, request: Request, key: str) -> Response:
        space = space_for(request, key, Level.ADMIN)
        context = {"request": request, "space_key": space.key}
        accounts = mail_accounts_of_space(space) if space.is_global else []
        return Response(
            {
                "results": MailAccountSerializer(
                    accounts, many=True, context=context
                ).data
            }
        )

    @extend_schema(
        operation_id="mail_account_create",
        summary="Add a mail account",
        description="Space admins of a global space. The password is encrypted "
        "at rest and never shown again. Test the connection afterwards with "
        "the account's test operation.",
        request=MailAccountSerializer,
        responses={201: MailAccountSerializer, **problems(400, 401, 403, 404, 429)},
        tags=TAGS,
    )
    def post(self, request: Request, key: str) -> Response:
        space = space_for(request, key, Level.ADMIN)
        data = validated(MailAccountSerializer, request.data)
        account = mail_account_create(space=space, actor=request.user, **data)
        response = _shown(request, space, account.pk, status=201)
        response["Location"] = response.data["url"]
        return response


class MailAccountDetailView(APIView):
    @extend_schema(
        operation_id="mail_account_retrieve",
        summary="A mail account",
        responses={200: MailAccountSerializer, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def get(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        return _shown(request, space, id)

    @extend_schema(
        operation_id="mail_account_update",
        summary="Change a mail account",
        description="Only the fields given change. Leave the password out to "
        "keep the stored one, unless the change needs it again (the answer "
        "then says so).",
        request=MailAccountUpdateSerializer,
        responses={200: MailAccountSerializer, **problems(400, 401, 403, 404, 429)},
        tags=TAGS,
    )
    def patch(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        account = _account_or_404(space, id)
        serializer = MailAccountUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        password = changes.pop("password", "")
        mail_account_update(
            account=account, changes=changes, password=password, actor=request.user
        )
        return _shown(request, space, id)

    @extend_schema(
        operation_id="mail_account_delete",
        summary="Remove a mail account",
        description="The mail it archived stays in the space.",
        responses={204: None, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def delete(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        mail_account_delete(account=_account_or_404(space, id), actor=request.user)
        return Response(status=204)


class MailAccountEnabledView(APIView):
    @extend_schema(
        operation_id="mail_account_set_enabled",
        summary="Switch scheduled polling of an account on or off",
        request=EnabledSerializer,
        responses={200: MailAccountSerializer, **problems(400, 401, 403, 404, 429)},
        tags=TAGS,
    )
    def post(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        enabled = validated(EnabledSerializer, request.data)["enabled"]
        mail_account_set_enabled(
            account=_account_or_404(space, id), enabled=enabled, actor=request.user
        )
        return _shown(request, space, id)


class MailAccountTestView(APIView):
    @extend_schema(
        operation_id="mail_account_test",
        summary="Test an account's connection",
        description="Connects, logs in, opens the folder and counts the "
        "messages; changes nothing. A failed test is still a 200: ok is "
        "false and detail says what went wrong.",
        request=None,
        responses={200: ConnectionTestSerializer, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def post(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        account = _account_or_404(space, id)
        result = mail_account_test(account)
        return Response(
            ConnectionTestSerializer(
                {
                    "ok": result.ok,
                    "message_count": result.message_count,
                    "kind": result.kind,
                    "detail": result.sentence(account),
                }
            ).data
        )


class MailAccountFetchView(APIView):
    @extend_schema(
        operation_id="mail_account_fetch",
        summary="Fetch new mail now",
        description="Queues a poll and answers with it at once; follow its url "
        "until done is true. 409 when fetching is switched off for the site "
        "or the account is disabled.",
        request=None,
        responses={202: PollRunSerializer, **problems(401, 403, 404, 409, 429)},
        tags=TAGS,
    )
    def post(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        account = _account_or_404(space, id)
        try:
            run = mail_account_fetch_request(account=account, actor=request.user)
        except FetchDisabledError as error:
            raise Conflict(str(error)) from error
        except ValidationError as error:
            messages = validation_errors(error)["non_field_errors"]
            raise Conflict(" ".join(messages)) from error
        run.account = account
        context = {"request": request, "space_key": space.key}
        return Response(
            PollRunSerializer(run, context=context).data,
            status=202,
            headers={
                "Location": api_url(
                    context, "poll-run-detail", key=space.key, id=run.pk
                )
            },
        )


class PollRunDetailView(APIView):
    @extend_schema(
        operation_id="poll_run_retrieve",
        summary="A poll of a mail account",
        responses={200: PollRunSerializer, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def get(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        try:
            run: PollRun = poll_run_get(space, id)
        except Http404:
            raise exceptions.NotFound(_("No such poll.")) from None
        context = {"request": request, "space_key": space.key}
        return Response(PollRunSerializer(run, context=context).data)
