"""A real OAuth2 authorization server for tests (pytest plugin).

Built from Authlib's server pieces in a small Flask site on a loopback port,
in a thread of the test session: the authorization-code grant with PKCE
(S256 required) and state, refresh tokens with rotation, revocation
(RFC 7009), the device authorization grant (RFC 8628), OpenID Connect and
RFC 8414 discovery documents, and a userinfo endpoint.

Access tokens are HS256 JWTs with an ``email`` claim naming the mail user,
signed with a key the session's Dovecot trusts (``DovecotServer.trust_jwt_key``),
so Dovecot checks them itself. An ID token comes with every grant that asked
for ``openid``.

Rotation works as at the big providers: a refresh answers with a new refresh
token, and the old one stays valid until the new one is used (then the old
one and any other successor of it are revoked). Revoking any token of a grant,
or removing the app on the "apps" page as a person would, revokes the whole
grant: its refresh tokens stop working at once, while access tokens already
issued stay valid until they expire (Dovecot cannot know about revocation).

Test hooks: ``access_token_lifetime``, ``refresh_delay`` (the token endpoint
answers a refresh only after that many seconds, its tokens already issued)
with ``refresh_started`` set when such a refresh arrives, ``refresh_count``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import (
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    DeviceCredentialDict,
)
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

from tests.dovecot import DovecotServer

HOST = "127.0.0.1"
CLIENT_ID = "mailarchive-test"
CLIENT_SECRET = "test-client-secret-" + "s" * 20
KEY_ID = "test-key"
CALLBACK_PATH = "/accounts/oauth2/callback/"

# The server runs on loopback over plain HTTP; Authlib wants to be told.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_encode(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 JWT with ``typ: JWT``, which is what Dovecot 2.3 accepts."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KEY_ID}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (for assertions)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class User:
    username: str
    password: str

    def get_user_id(self) -> str:
        return self.username


class Client(ClientMixin):
    """The archive, registered as a confidential client."""

    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Any live server on this machine, at the archive's callback path.
        return redirect_uri.startswith(
            ("http://localhost:", "http://127.0.0.1:")
        ) and redirect_uri.endswith(CALLBACK_PATH)

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (
            "authorization_code",
            "refresh_token",
            DeviceCodeGrant.GRANT_TYPE,
        )


@dataclass
class AuthorizationCode:
    code: str
    user: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    created: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() - self.created > 300


@dataclass
class RefreshToken:
    """One refresh token of a grant (``grant_id``) and where it came from."""

    token: str
    user: str
    scope: str
    grant_id: str
    parent: str = ""
    revoked: bool = False

    def check_client(self, client: Any) -> bool:
        return client.get_client_id() == CLIENT_ID

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return self.user

    def get_client(self) -> Client:
        return Client()


class AuthorizationServerState:
    """Users, codes, tokens and grants of the test provider; thread-safe."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.revoked_grants: set[str] = set()
        self.devices: dict[str, dict[str, Any]] = {}
        self.device_grants: dict[str, tuple[str, bool]] = {}
        self.access_token_lifetime = 3600
        self.device_code_lifetime = 600
        self.refresh_delay = 0.0
        self.refresh_started = threading.Event()
        self.refresh_count = 0
        self.url = ""

    def add_user(self, username: str, password: str) -> None:
        with self.lock:
            self.users[username] = User(username, password)

    def check_user(self, username: str, password: str) -> bool:
        user = self.users.get(username)
        return user is not None and secrets.compare_digest(user.password, password)

    def grants_of(self, username: str) -> set[str]:
        with self.lock:
            return {
                t.grant_id
                for t in self.refresh_tokens.values()
                if t.user == username and t.grant_id not in self.revoked_grants
            }

    def revoke_user(self, username: str) -> int:
        """Remove the app's access for *username*, as on a provider's account
        page; returns how many grants that revoked."""
        with self.lock:
            grants_ = self.grants_of(username)
            self.revoked_grants |= grants_
            return len(grants_)

    def valid_refresh_token(self, token: str) -> RefreshToken | None:
        with self.lock:
            record = self.refresh_tokens.get(token)
            if (
                record is None
                or record.revoked
                or record.grant_id in self.revoked_grants
            ):
                return None
            return record

    def approve_device(self, user_code: str, username: str, allow: bool = True) -> None:
        with self.lock:
            self.device_grants[user_code] = (username, allow)

    def issue(
        self,
        *,
        user: str,
        scope: str,
        include_refresh_token: bool,
        grant_id: str,
        parent: str = "",
    ) -> dict[str, Any]:
        now = int(time.time())
        lifetime = int(self.access_token_lifetime)
        claims = {
            "iss": self.url,
            "sub": user,
            "email": user,
            "aud": CLIENT_ID,
            "client_id": CLIENT_ID,
            "scope": scope,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(8),
        }
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": jwt_encode(claims, self.key),
            "expires_in": lifetime,
            "scope": scope,
        }
        if "openid" in scope.split():
            token["id_token"] = jwt_encode(
                {
                    "iss": self.url,
                    "sub": user,
                    "aud": CLIENT_ID,
                    "email": user,
                    "iat": now,
                    "exp": now + 300,
                },
                self.key,
            )
        if include_refresh_token:
            value = secrets.token_urlsafe(32)
            with self.lock:
                self.refresh_tokens[value] = RefreshToken(
                    token=value,
                    user=user,
                    scope=scope,
                    grant_id=grant_id,
                    parent=parent,
                )
            token["refresh_token"] = value
        return token


def build_app(state: AuthorizationServerState) -> Flask:
    """The provider's web site: its endpoints, sign-in and consent pages."""
    from authlib.integrations.flask_oauth2 import AuthorizationServer

    app = Flask("test-oauth2-provider")

    def query_client(client_id: str) -> Client | None:
        return Client() if client_id == CLIENT_ID else None

    def save_token(token: dict[str, Any], oauth_request: Any) -> None:
        # Tokens are recorded as they are issued, in ``state.issue``.
        return None

    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)

    def generate(
        grant_type: str,
        client: Client,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        username = user if isinstance(user, str) else user.username
        credential = getattr(request, "_refreshing", None)
        return state.issue(
            user=username,
            scope=scope or "",
            include_refresh_token=include_refresh_token,
            grant_id=credential.grant_id if credential else secrets.token_hex(8),
            parent=credential.token if credential else "",
        )

    server.register_token_generator("default", generate)

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

        def save_authorization_code(self, code: str, oauth_request: Any) -> None:
            data = oauth_request.payload.data
            state.codes[code] = AuthorizationCode(
                code=code,
                user=oauth_request.user.username,
                redirect_uri=oauth_request.payload.redirect_uri,
                scope=oauth_request.payload.scope or "",
                code_challenge=data.get("code_challenge", ""),
                code_challenge_method=data.get("code_challenge_method", ""),
            )

        def query_authorization_code(
            self, code: str, client: Client
        ) -> AuthorizationCode | None:
            found = state.codes.get(code)
            return None if found is None or found.is_expired() else found

        def delete_authorization_code(self, authorization_code: Any) -> None:
            state.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Any) -> User:
            return state.users[authorization_code.user]

    class Challenge(CodeChallenge):
        SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

        def get_authorization_code_challenge(self, authorization_code: Any) -> str:
            return authorization_code.code_challenge

        def get_authorization_code_challenge_method(
            self, authorization_code: Any
        ) -> str:
            return authorization_code.code_challenge_method

    class RefreshGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token: str) -> Any:
            found = state.valid_refresh_token(refresh_token)
            if found is not None:
                request._refreshing = found  # type: ignore[attr-defined]
            return found

        def authenticate_user(self, credential: Any) -> User:
            return state.users[credential.user]

        def revoke_old_credential(self, credential: Any) -> None:
            # Using a successor confirms it: the token it replaced, and any
            # other successor of that one, are retired now. The token just
            # used stays valid until its own successor is used.
            with state.lock:
                state.refresh_count += 1
                for other in state.refresh_tokens.values():
                    replaced = other.token == credential.parent
                    sibling = bool(credential.parent) and (
                        other.parent == credential.parent
                    )
                    if (replaced or sibling) and other.token != credential.token:
                        other.revoked = True

    class Revocation(RevocationEndpoint):
        CLIENT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

        def query_token(self, token_string: str, token_type_hint: str) -> Any:
            return state.refresh_tokens.get(token_string)

        def revoke_token(self, token: Any, oauth_request: Any) -> None:
            with state.lock:
                state.revoked_grants.add(token.grant_id)

    class DeviceEndpoint(DeviceAuthorizationEndpoint):
        CLIENT_AUTH_METHODS = ["client_secret_post", "client_secret_basic", "none"]
        INTERVAL = 1

        @property
        def EXPIRES_IN(self) -> int:  # noqa: N802 (Authlib's name)
            return state.device_code_lifetime

        def get_verification_uri(self) -> str:
            return f"{state.url}/device"

        def save_device_credential(
            self, client_id: str, scope: str, data: dict[str, Any]
        ) -> None:
            with state.lock:
                state.devices[data["device_code"]] = {
                    **data,
                    "client_id": client_id,
                    "scope": scope,
                    "created": time.time(),
                }

    class DeviceGrant(DeviceCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

        def query_device_credential(self, device_code: str) -> Any:
            data = state.devices.get(device_code)
            if data is None:
                return None
            expires = data["created"] + data["expires_in"]
            return DeviceCredentialDict({**data, "expires_at": expires})

        def query_user_grant(self, user_code: str) -> Any:
            found = state.device_grants.get(user_code)
            if found is None:
                return None
            username, allowed = found
            return state.users[username], allowed

        def should_slow_down(self, credential: Any) -> bool:
            return False

    server.register_grant(CodeGrant, [Challenge(required=True)])
    server.register_grant(RefreshGrant)
    server.register_grant(DeviceGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(DeviceEndpoint(server))

    def metadata() -> dict[str, Any]:
        return {
            "issuer": state.url,
            "authorization_endpoint": f"{state.url}/authorize",
            "token_endpoint": f"{state.url}/token",
            "revocation_endpoint": f"{state.url}/revoke",
            "device_authorization_endpoint": f"{state.url}/device_authorization",
            "userinfo_endpoint": f"{state.url}/userinfo",
            "response_types_supported": ["code"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                DeviceCodeGrant.GRANT_TYPE,
            ],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "client_secret_basic",
            ],
            "scopes_supported": ["openid", "email", "offline_access", "mail"],
            "service_name": "Test provider",
        }

    @app.get("/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        return jsonify(metadata())

    @app.get("/.well-known/oauth-authorization-server")
    def oauth_metadata() -> Response:
        return jsonify(metadata())

    page = """<!doctype html><html lang="en"><head><title>Test provider</title></head>
<body><h1>Test provider</h1><p>{message}</p>
<form method="post">{hidden}
<label>User <input name="username" value="{login_hint}"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>"""

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        if request.method == "GET":
            try:
                server.get_consent_grant(end_user=None)
            except Exception as error:  # an invalid request, shown as such
                return Response(f"invalid authorization request: {error}", 400)
            return page.format(
                message="The mail archive asks to read your mail.",
                hidden="",
                login_hint=request.args.get("login_hint", ""),
            )
        username = request.form.get("username", "")
        if request.form.get("decision") != "allow":
            grant = server.get_consent_grant(end_user=None)
            return server.create_authorization_response(grant=grant, grant_user=None)
        if not state.check_user(username, request.form.get("password", "")):
            return Response("wrong user name or password", 403)
        user = state.users[username]
        grant = server.get_consent_grant(end_user=user)
        return server.create_authorization_response(grant=grant, grant_user=user)

    @app.post("/token")
    def token() -> Any:
        response = server.create_token_response()
        if request.form.get("grant_type") == "refresh_token" and state.refresh_delay:
            # Tokens already issued (and rotated); the answer is held back.
            state.refresh_started.set()
            time.sleep(state.refresh_delay)
        return response

    @app.post("/revoke")
    def revoke() -> Any:
        return server.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)

    @app.post("/device_authorization")
    def device_authorization() -> Any:
        return server.create_endpoint_response(DeviceEndpoint.ENDPOINT_NAME)

    @app.route("/device", methods=["GET", "POST"])
    def device() -> Any:
        if request.method == "GET":
            return page.format(
                message="Enter the code shown by the device.",
                hidden='<label>Code <input name="user_code"></label>',
                login_hint="",
            )
        username = request.form.get("username", "")
        if not state.check_user(username, request.form.get("password", "")):
            return Response("wrong user name or password", 403)
        state.approve_device(
            request.form.get("user_code", "").strip().upper(),
            username,
            request.form.get("decision") == "allow",
        )
        return "Done: you may close this page."

    @app.get("/userinfo")
    def userinfo() -> Any:
        header = request.headers.get("Authorization", "")
        try:
            claims = jwt_claims(header.removeprefix("Bearer "))
        except (IndexError, ValueError):
            return Response("", 401)
        return jsonify({"sub": claims["sub"], "email": claims["email"]})

    @app.route("/apps", methods=["GET", "POST"])
    def apps() -> Any:
        """The person's page at the provider where they remove the app."""
        username = request.values.get("user", "")
        if request.method == "POST":
            count = state.revoke_user(username)
            return f"<p id='removed'>Access removed ({count}).</p>"
        return (
            f"<form method='post'><input type='hidden' name='user' value='{username}'>"
            "<button type='submit'>Remove access</button></form>"
        )

    return app


class AuthorizationServerThread:
    """The test provider serving on a loopback port from a thread."""

    def __init__(self, key: bytes) -> None:
        self.state = AuthorizationServerState(key)
        self._server = make_server(HOST, 0, build_app(self.state), threaded=True)
        self.port = self._server.server_port
        self.url = self.state.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def authorization_server(dovecot: DovecotServer) -> Iterator[AuthorizationServerState]:
    """The session's OAuth2 provider, whose access tokens Dovecot accepts."""
    key = secrets.token_bytes(32)
    dovecot.trust_jwt_key(alg="HS256", kid=KEY_ID, key=key)
    server = AuthorizationServerThread(key)
    server.start()
    try:
        yield server.state
    finally:
        server.stop()


@pytest.fixture
def oauth2_provider(
    authorization_server: AuthorizationServerState, settings: Any
) -> AuthorizationServerState:
    """The test provider configured as the site's custom OAuth2 provider."""
    from accounts import providers

    settings.MAILARCHIVE_OAUTH2_CUSTOM_ISSUER = authorization_server.url
    settings.MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_ID = CLIENT_ID
    settings.MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_SECRET = CLIENT_SECRET
    providers.discovery_forget()
    authorization_server.access_token_lifetime = 3600
    authorization_server.device_code_lifetime = 600
    authorization_server.refresh_delay = 0.0
    authorization_server.refresh_started.clear()
    return authorization_server
