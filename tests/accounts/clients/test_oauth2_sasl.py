"""Signing in with OAuth2 access tokens (SASL OAUTHBEARER and XOAUTH2).

Tokens come from the session's real authorization server; Dovecot's oauth2
passdb checks them itself (their signature, expiry and ``email`` claim).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from accounts.clients import (
    ConnectionSettings,
    ErrorKind,
    MailClientError,
    OAuth2Token,
    open_client,
)
from accounts.clients.credentials import describe_sasl_error
from tests.accounts.clients.conftest import TEST_TIMEOUT, port_for
from tests.dovecot import DovecotServer, MailUser
from tests.oauth2_server import KEY_ID, AuthorizationServerState, jwt_encode


def access_token(server: AuthorizationServerState, user: str, **claims) -> str:
    issued = server.issue(
        user=user, scope="mail", include_refresh_token=False, grant_id="t"
    )["access_token"]
    if not claims:
        return issued
    from tests.oauth2_server import jwt_claims

    return jwt_encode({**jwt_claims(issued), **claims}, server.key)


def token_settings(
    dovecot: DovecotServer, user: MailUser, protocol: str, token: str
) -> ConnectionSettings:
    return ConnectionSettings(
        protocol=protocol,
        host=dovecot.host,
        port=port_for(dovecot, protocol),
        username=user.username,
        credential=OAuth2Token(token),
        timeout=TEST_TIMEOUT,
        allowed_hosts=(dovecot.host,),
        ca_file=dovecot.ca_file,
    )


@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_a_valid_token_signs_in_and_reads_the_mailbox(
    dovecot, mail_user, authorization_server, protocol
):
    dovecot.deliver(mail_user.username, b"Subject: hello\r\n\r\nbody\r\n")
    token = access_token(authorization_server, mail_user.username)
    with open_client(token_settings(dovecot, mail_user, protocol, token)) as client:
        assert client.message_count() == 1
    # The standard mechanism is preferred when both are offered.
    assert "method=OAUTHBEARER" in dovecot.log_file.read_text()


@pytest.fixture(scope="module")
def xoauth2_only(authorization_server) -> Iterator[DovecotServer]:
    """A Dovecot that offers XOAUTH2 but not OAUTHBEARER (like Outlook)."""
    server = DovecotServer(auth_mechanisms="plain login xoauth2")
    server.start()
    server.trust_jwt_key(alg="HS256", kid=KEY_ID, key=authorization_server.key)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_xoauth2_is_used_when_it_is_all_the_server_offers(
    xoauth2_only, authorization_server, protocol
):
    user = MailUser(f"user{secrets.token_hex(6)}", secrets.token_urlsafe(12))
    xoauth2_only.add_user(user.username, user.password)
    token = access_token(authorization_server, user.username)
    with open_client(token_settings(xoauth2_only, user, protocol, token)) as client:
        assert client.message_count() == 0
    assert "method=XOAUTH2" in xoauth2_only.log_file.read_text()


@pytest.mark.parametrize("protocol", ["imaps", "pops"])
@pytest.mark.parametrize("problem", ["expired", "other-user", "forged"])
def test_a_refused_token_is_token_rejected_without_the_token_in_words(
    dovecot, mail_user, authorization_server, protocol, problem
):
    if problem == "expired":
        token = access_token(authorization_server, mail_user.username, exp=1, iat=0)
    elif problem == "other-user":
        token = access_token(authorization_server, "someone-else")
    else:
        token = jwt_encode(
            {"sub": mail_user.username, "email": mail_user.username, "exp": 2**31},
            b"not the provider's key" * 2,
        )
    settings = token_settings(dovecot, mail_user, protocol, token)
    with pytest.raises(MailClientError) as caught, open_client(settings):
        pass
    assert caught.value.kind == ErrorKind.TOKEN_REJECTED
    assert token not in str(caught.value)
    assert token.split(".")[2] not in repr(settings)


def test_a_server_without_oauth2_mechanisms_says_so(
    make_settings, authorization_server, mail_user
):
    server = DovecotServer(auth_mechanisms="plain login")
    server.start()
    try:
        server.add_user(mail_user.username, mail_user.password)
        token = access_token(authorization_server, mail_user.username)
        settings = token_settings(server, mail_user, "imaps", token)
        with pytest.raises(MailClientError) as caught, open_client(settings):
            pass
    finally:
        server.stop()
    assert caught.value.kind == ErrorKind.OAUTH2_UNAVAILABLE


def test_sasl_messages_follow_rfc_7628():
    token = OAuth2Token("tok")
    assert (
        token.initial_response("OAUTHBEARER", username="a,b=c", host="h", port=993)
        == b"n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01auth=Bearer tok\x01\x01"
    )
    assert (
        token.initial_response("XOAUTH2", username="u", host="h", port=993)
        == b"user=u\x01auth=Bearer tok\x01\x01"
    )
    assert token.mechanism_for({"PLAIN", "XOAUTH2"}) == "XOAUTH2"
    assert token.mechanism_for({"PLAIN"}) is None
    assert "tok" not in repr(token)
    assert (
        describe_sasl_error(b'{"status":"invalid_token","scope":"mail"}')
        == "status invalid_token, scope mail"
    )
