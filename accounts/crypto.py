"""Mail account secrets at rest: Fernet tokens under rotating keys.

Passwords and OAuth2 tokens alike. ``MAILARCHIVE_ENCRYPTION_KEY`` lists
Fernet keys; the first encrypts, every one decrypts, so a new key is put
first and ``manage.py rotatemailsecrets`` re-encrypts the stored secrets
under it before an old key is dropped. With no
key configured, one is derived from ``SECRET_KEY`` (HKDF-SHA256). The derived
key always stays the last decrypting key, so a site that starts with the
derived key can move to explicit keys by setting them and running the rotation.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

HKDF_INFO = b"mailarchive mail account passwords v1"
KEY_HELP = (
    "Each entry of MAILARCHIVE_ENCRYPTION_KEY (comma-separated) must be a Fernet "
    "key: 32 random bytes in URL-safe base64, e.g. the output of "
    '`python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"`.'
)


class PasswordUnreadableError(Exception):
    """A stored secret (password or token) cannot be decrypted with any key."""


SecretUnreadableError = PasswordUnreadableError


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from ``secret_key`` (used when no key is set)."""
    material = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO
    ).derive(secret_key.encode("utf-8"))
    return base64.urlsafe_b64encode(material)


def _parse_key(position: int, value: str) -> Fernet:
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 32:
        # The key itself is never echoed: it is a secret.
        raise ImproperlyConfigured(
            f"MAILARCHIVE_ENCRYPTION_KEY entry {position} is not a valid key. "
            + KEY_HELP
        )
    return Fernet(value.encode("ascii"))


@lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    fernets = [
        _parse_key(position, key.strip())
        for position, key in enumerate(keys, start=1)
        if key.strip()
    ]
    fernets.append(Fernet(derived_key(secret_key)))
    return MultiFernet(fernets)


def keyring() -> MultiFernet:
    """The configured keys; raises ImproperlyConfigured for a malformed one."""
    keys = settings.MAILARCHIVE_ENCRYPTION_KEY
    if isinstance(keys, str):
        keys = keys.split(",")
    return _keyring(tuple(keys), settings.SECRET_KEY)


def password_encrypt(password: str) -> str:
    """Encrypt ``password`` under the first configured key."""
    return keyring().encrypt(password.encode("utf-8")).decode("ascii")


def password_decrypt(token: str) -> str:
    """Decrypt a stored password; PasswordUnreadableError if no key fits."""
    try:
        return keyring().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as error:
        raise PasswordUnreadableError(
            "the stored password cannot be decrypted with the configured keys"
        ) from error


def password_reencrypt(token: str) -> str:
    """The same password as a token under the first configured key."""
    try:
        return keyring().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as error:
        raise PasswordUnreadableError(
            "the stored password cannot be decrypted with the configured keys"
        ) from error


# Tokens are stored exactly like passwords; these names say so where it reads
# better.
secret_encrypt = password_encrypt
secret_decrypt = password_decrypt
secret_reencrypt = password_reencrypt
