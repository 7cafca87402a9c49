"""Mail account passwords at rest: encryption, key rotation, bad keys."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from accounts.crypto import (
    PasswordUnreadableError,
    derived_key,
    password_decrypt,
    password_encrypt,
    password_reencrypt,
)


def test_round_trip_hides_the_password(settings):
    settings.MAILARCHIVE_ENCRYPTION_KEY = []
    token = password_encrypt("hunter2 ünïcode")
    assert "hunter2" not in token
    assert password_decrypt(token) == "hunter2 ünïcode"
    assert password_encrypt("same") != password_encrypt("same")  # random IV


def test_without_keys_the_secret_key_derives_one(settings):
    settings.MAILARCHIVE_ENCRYPTION_KEY = []
    token = password_encrypt("pw")
    assert Fernet(derived_key(settings.SECRET_KEY)).decrypt(token.encode()) == b"pw"
    settings.SECRET_KEY = "another-secret-" + "y" * 40
    with pytest.raises(PasswordUnreadableError):
        password_decrypt(token)


def test_first_key_encrypts_and_every_key_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAILARCHIVE_ENCRYPTION_KEY = [old]
    under_old = password_encrypt("pw")
    settings.MAILARCHIVE_ENCRYPTION_KEY = [new, old]
    assert password_decrypt(under_old) == "pw"
    rotated = password_reencrypt(under_old)
    assert Fernet(new.encode()).decrypt(rotated.encode()) == b"pw"
    settings.MAILARCHIVE_ENCRYPTION_KEY = [new]
    assert password_decrypt(rotated) == "pw"
    with pytest.raises(PasswordUnreadableError):
        password_decrypt(under_old)


def test_passwords_from_the_derived_key_survive_moving_to_explicit_keys(settings):
    settings.MAILARCHIVE_ENCRYPTION_KEY = []
    token = password_encrypt("pw")
    settings.MAILARCHIVE_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    assert password_decrypt(token) == "pw"


@pytest.mark.parametrize(
    "bad", ["not-a-key", "c2hvcnQ=", "ü" * 44], ids=["garbage", "short", "non-ascii"]
)
def test_malformed_key_says_how_to_fix_it_without_echoing_it(settings, bad):
    settings.MAILARCHIVE_ENCRYPTION_KEY = [Fernet.generate_key().decode(), bad]
    with pytest.raises(ImproperlyConfigured) as error:
        password_encrypt("pw")
    message = str(error.value)
    assert "MAILARCHIVE_ENCRYPTION_KEY entry 2" in message
    assert "Fernet.generate_key()" in message
    assert bad not in message


def test_garbled_token_is_unreadable(settings):
    settings.MAILARCHIVE_ENCRYPTION_KEY = []
    with pytest.raises(PasswordUnreadableError):
        password_decrypt("gAAAAA-not-a-token")
    with pytest.raises(PasswordUnreadableError):
        password_decrypt("ü")
