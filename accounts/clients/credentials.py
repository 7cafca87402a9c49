"""How a client proves who it is: a password, or an OAuth2 access token.

The credential travels from the account to the client inside
``ConnectionSettings``. A client signs in with a password as mail servers
always allowed (IMAP LOGIN, POP3 USER/PASS, SASL PLAIN), and with an OAuth2
token through the SASL mechanisms of RFC 7628 (OAUTHBEARER) and its
predecessor XOAUTH2, whichever the server offers. Adding a sign-in method is
one class here (its SASL messages) plus its tests.

Secrets never appear in a credential's ``repr`` or in any error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Password:
    """A mailbox password."""

    secret: str = field(repr=False)
    kind = "password"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret,)


@dataclass(frozen=True)
class OAuth2Token:
    """An OAuth2 access token for the mailbox (a bearer token)."""

    access_token: str = field(repr=False)
    kind = "oauth2"
    # The server's mechanisms tried in this order: the standard one first.
    MECHANISMS = ("OAUTHBEARER", "XOAUTH2")

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.access_token,)

    def mechanism_for(self, offered: set[str]) -> str | None:
        """The first of ``MECHANISMS`` that the server offers, else ``None``."""
        return next((name for name in self.MECHANISMS if name in offered), None)

    def initial_response(
        self, mechanism: str, *, username: str, host: str, port: int
    ) -> bytes:
        """The client's first (and only) SASL message for *mechanism*."""
        bearer = f"auth=Bearer {self.access_token}\x01"
        if mechanism == "XOAUTH2":
            return f"user={username}\x01{bearer}\x01".encode()
        if mechanism == "OAUTHBEARER":
            # RFC 5801 saslname: "," and "=" escaped.
            name = username.replace("=", "=3D").replace(",", "=2C")
            return f"n,a={name},\x01host={host}\x01port={port}\x01{bearer}\x01".encode()
        raise ValueError(f"not an OAuth2 SASL mechanism: {mechanism}")

    @staticmethod
    def failure_reply(mechanism: str) -> bytes:
        """What the client answers to the server's error challenge.

        RFC 7628 §3.2.3: a single ``%x01`` for OAUTHBEARER; XOAUTH2 expects an
        empty response. The server then ends the exchange with a failure.
        """
        return b"\x01" if mechanism == "OAUTHBEARER" else b""


Credential = Password | OAuth2Token


def describe_sasl_error(challenge: bytes) -> str:
    """The server's error challenge (a JSON object) as plain words.

    E.g. ``status 401, scope https://mail.google.com/``; the challenge never
    holds the token.
    """
    try:
        data = json.loads(challenge.decode("utf-8", "replace"))
    except ValueError:
        return challenge.decode("utf-8", "replace").strip()
    if not isinstance(data, dict):
        return str(data)
    return ", ".join(f"{key} {value}" for key, value in data.items() if value)
