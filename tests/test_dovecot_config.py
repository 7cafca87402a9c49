"""The test Dovecot's configuration for each supported Dovecot version.

The machines the suite is run on have Dovecot 2.3 (Debian 12), so the 2.4
text (Debian 13, Ubuntu 25.04 and later) is pinned here as Dovecot 2.4.1
accepted and ran it: from a Debian 13 root through
``MAILARCHIVE_TEST_DOVECOT_ROOT`` (README, "Tested systems"). The tests at
the end check how the fixture runs Dovecot from such a root.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import dovecot as fixture
from tests.dovecot import (
    ConfigValues,
    DovecotServer,
    DovecotUnavailableError,
    parse_version,
    render_config,
    unsupported_version_message,
)

ROOT = Path("/tmp/mailarchive-dovecot-abc")
VALUES = ConfigValues(
    root=ROOT,
    host="127.0.0.1",
    ports={"imap": 10143, "imaps": 10993, "pop3": 10110, "pop3s": 10995},
    mail_uid=8,
    mail_gid=8,
    auth_mechanisms="plain login xoauth2 oauthbearer",
    imap_capability="IMAP4rev1 IDLE",
)


def parse(text: str) -> dict:
    """Dovecot's config syntax as nested dicts: ``{"section name": {...}}``."""
    root: dict = {}
    stack = [root]
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("{"):
            section: dict = {}
            stack[-1][line[:-1].strip()] = section
            stack.append(section)
        elif line == "}":
            stack.pop()
        else:
            key, sep, value = line.partition("=")
            assert sep, f"not a setting: {line!r}"
            assert key.strip() not in stack[-1], f"set twice: {key.strip()}"
            stack[-1][key.strip()] = value.strip()
    assert len(stack) == 1, "unbalanced braces"
    return root


def settings_lines(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param("2.3.19.1 (9b53102964)\n", (2, 3), id="debian-12"),
        pytest.param("2.4.1-4 (7d8c0e5759)\n", (2, 4), id="debian-13"),
        pytest.param("2.4.2 (0962ed2104)\n", (2, 4), id="ubuntu"),
        pytest.param("", None, id="empty"),
        pytest.param("dovecot: unknown option\n", None, id="garbage"),
    ],
)
def test_the_version_is_read_from_dovecot_version(output, expected):
    assert parse_version(output) == expected


@pytest.mark.parametrize("version", [(2, 2), (3, 0), None], ids=str)
def test_an_unsupported_version_is_one_sentence_that_names_the_supported(
    monkeypatch, version
):
    monkeypatch.setattr(fixture, "dovecot_version", lambda: version)
    monkeypatch.setattr(fixture, "find_binary", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(fixture.os, "geteuid", lambda: 0)
    with pytest.raises(DovecotUnavailableError) as caught:
        DovecotServer().start()
    message = str(caught.value)
    assert message == unsupported_version_message(version)
    assert "2.3 (Debian 12)" in message
    assert "2.4 (Debian 13" in message
    assert message.endswith(".") and "\n" not in message
    with pytest.raises(DovecotUnavailableError):
        render_config(version, VALUES)


def test_the_2_4_config_starts_with_the_two_version_settings():
    lines = settings_lines(render_config((2, 4), VALUES))
    assert lines[0] == "dovecot_config_version = 2.4.0"
    assert lines[1] == "dovecot_storage_version = 2.4.0"


def test_the_2_4_config_uses_2_4_setting_names():
    config = parse(render_config((2, 4), VALUES))
    assert config["ssl_server_cert_file"] == f"{ROOT}/tls/server.pem"
    assert config["ssl_server_key_file"] == f"{ROOT}/tls/server.key"
    assert config["auth_allow_cleartext"] == "yes"
    assert config["mail_driver"] == "maildir"
    assert config["mail_path"] == "~/Maildir"
    assert config["listen"] == "127.0.0.1"
    assert config["auth_mechanisms"] == "plain login xoauth2 oauthbearer"
    assert config["pop3_uidl_format"] == "%{uid | hex(8)}%{uidvalidity | hex(8)}"
    assert config["protocol imap"] == {"imap_capability": "IMAP4rev1 IDLE"}


def test_the_2_4_config_has_none_of_the_2_3_settings():
    text = render_config((2, 4), VALUES)
    config = parse(text)
    for gone in (
        "ssl_cert",
        "ssl_key",
        "disable_plaintext_auth",
        "mail_location",
    ):
        assert gone not in config
    # No one-letter variables (%u, %d, %n) and no "<file" values.
    assert not re.search(r"%[a-zA-Z0-9]", text.replace("%{", ""))
    assert "= <" not in text
    # Named sections with named settings: no bare blocks, no driver/args.
    for line in settings_lines(text):
        assert line not in ("passdb {", "userdb {")
        assert not line.startswith(("args =", "driver =", "mechanisms ="))


def test_the_2_4_config_signs_users_in_from_their_passwd_files():
    config = parse(render_config((2, 4), VALUES))
    assert config["passdb passwd-file"] == {
        "passwd_file_path": f"{ROOT}/passwd/%{{user}}",
        "mechanisms_filter": "plain login",
    }
    assert config["userdb passwd-file"] == {
        "passwd_file_path": f"{ROOT}/passwd/%{{user}}"
    }
    assert not any(key.startswith("passdb oauth2") for key in config)


def test_the_2_4_config_validates_bearer_tokens_locally():
    oauth2 = parse(render_config((2, 4), VALUES))["oauth2"]
    assert oauth2["introspection_mode"] == "local"
    assert oauth2["username_attribute"] == "email"
    dictionary = oauth2["oauth2_local_validation"]["dict fs"]["fs posix"]
    # The fixture writes keys as jwt-keys/<azp>/<ALG>/<kid>, the layout the
    # docs give for fs posix.
    assert dictionary == {"prefix": f"{ROOT}/jwt-keys/"}


def test_the_2_4_config_listens_on_the_given_ports():
    config = parse(render_config((2, 4), VALUES))
    imap = config["service imap-login"]
    pop3 = config["service pop3-login"]
    assert imap["inet_listener imap"] == {"port": "10143"}
    assert imap["inet_listener imaps"] == {"port": "10993", "ssl": "yes"}
    assert pop3["inet_listener pop3"] == {"port": "10110"}
    assert pop3["inet_listener pop3s"] == {"port": "10995", "ssl": "yes"}
    assert config["service anvil"] == {
        "unix_listener anvil-auth-penalty": {"mode": "0"}
    }
    assert config["auth_failure_delay"] == "0"


def test_both_versions_configure_the_same_instance():
    old = parse(render_config((2, 3), VALUES))
    new = parse(render_config((2, 4), VALUES))
    shared = (
        "instance_name",
        "base_dir",
        "state_dir",
        "listen",
        "protocols",
        "default_login_user",
        "default_internal_user",
        "log_path",
        "ssl",
        "ssl_min_protocol",
        "auth_mechanisms",
        "auth_failure_delay",
        "namespace inbox",
        "mail_uid",
        "mail_gid",
        "first_valid_uid",
        "first_valid_gid",
        "protocol imap",
    )
    for key in shared:
        assert old[key] == new[key], key


def make_system_root(directory: Path) -> Path:
    """A directory laid out like a system root with Dovecot installed."""
    (directory / "etc").mkdir()
    (directory / "tmp").mkdir()
    (directory / "usr" / "sbin").mkdir(parents=True)
    (directory / "usr" / "bin").mkdir()
    (directory / "usr" / "sbin" / "dovecot").write_text("")
    (directory / "usr" / "bin" / "doveadm").write_text("")
    (directory / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "mail:x:8:8:mail:/var/mail:/usr/sbin/nologin\n"
        "dovecot:x:100:102:Dovecot mail server:/usr/lib/dovecot:/usr/sbin/nologin\n"
    )
    (directory / "etc" / "group").write_text("root:x:0:\nmail:x:8:\ndovecot:x:102:\n")
    return directory


def test_without_a_system_root_dovecot_runs_from_this_machine(monkeypatch):
    monkeypatch.delenv(fixture.ROOT_ENV, raising=False)
    monkeypatch.setattr(fixture.shutil, "which", lambda name, path: f"/sbin/{name}")
    assert fixture.dovecot_root() is None
    assert fixture.dovecot_command("doveadm", "stop") == ["/sbin/doveadm", "stop"]


def test_a_system_root_runs_its_own_binaries_through_chroot(monkeypatch, tmp_path):
    root = make_system_root(tmp_path)
    monkeypatch.setenv(fixture.ROOT_ENV, str(root))
    monkeypatch.setattr(fixture.shutil, "which", lambda name, path: f"/sbin/{name}")
    assert fixture.dovecot_root() == root.resolve()
    assert fixture.dovecot_command("dovecot", "-c", "/tmp/x/dovecot.conf") == [
        "/sbin/chroot",
        str(root.resolve()),
        "/usr/sbin/dovecot",
        "-c",
        "/tmp/x/dovecot.conf",
    ]
    assert fixture.find_binary("doveadm") == "/usr/bin/doveadm"
    with pytest.raises(DovecotUnavailableError, match="not installed in"):
        fixture.find_binary("doveconf")


def test_a_system_root_lends_its_own_accounts(tmp_path):
    root = make_system_root(tmp_path)
    assert fixture.system_ids(root) == (8, 8, 102)
    (root / "etc" / "group").write_text("mail:x:8:\n")
    with pytest.raises(KeyError, match="dovecot"):
        fixture.system_ids(root)


def test_a_system_root_that_is_no_system_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(fixture.ROOT_ENV, str(tmp_path))
    with pytest.raises(DovecotUnavailableError, match="not a system root"):
        fixture.dovecot_root()
