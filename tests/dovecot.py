"""A real, throwaway Dovecot server for tests (pytest plugin).

Load it with ``pytest_plugins = ["tests.dovecot"]``. Each ``DovecotServer`` lives
in its own temporary directory with its own configuration (``/etc/dovecot`` is
never read), listens on random loopback ports and serves IMAP, IMAPS, POP3 and
POP3S with STARTTLS on the plain ports. Its certificate is issued for
``localhost`` and ``127.0.0.1`` by a CA generated for the instance
(``ca_file``). Mail is stored as Maildir owned by the system user ``mail``;
``deliver`` writes straight into the Maildir so large mailboxes are seeded in
seconds.

Besides passwords, every instance signs users in with OAuth2 bearer tokens
(SASL XOAUTH2 and OAUTHBEARER) through Dovecot's ``oauth2`` passdb, which
validates JWT access tokens itself (``introspection_mode = local``) against
the keys ``trust_jwt_key`` writes into its key dictionary; the token's
``email`` claim names the mail user. No network call is involved.

Dovecot needs root to switch to its unprivileged users, so the tests run as
root; ``scripts/ensure-dovecot`` installs the packages.

With ``MAILARCHIVE_TEST_DOVECOT_ROOT`` set to the directory of another system
(e.g. a Debian 13 root made by debootstrap, with Dovecot installed in it),
Dovecot and doveadm run from that root through ``chroot``: the instance
directories are made in its ``/tmp`` and its accounts (mail, dovecot) own the
files. That is how the 2.4 configuration is checked on a 2.3 machine.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import grp
import ipaddress
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
CA_SUBJECT = "mailarchive test CA"
SERVER_NAME = "localhost"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
_SBIN_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)
_delivery_counter = itertools.count()
ROOT_ENV = "MAILARCHIVE_TEST_DOVECOT_ROOT"


class DovecotUnavailableError(RuntimeError):
    """Dovecot cannot be started here; the message says what to do."""


@dataclass(frozen=True)
class MailUser:
    username: str
    password: str


def dovecot_root() -> Path | None:
    """The system root Dovecot runs from: None for this machine's own.

    Set by ``MAILARCHIVE_TEST_DOVECOT_ROOT``; raises when that is no system.
    """
    value = os.environ.get(ROOT_ENV, "")
    if not value:
        return None
    root = Path(value).resolve()
    if not (root / "etc" / "passwd").is_file() or not (root / "tmp").is_dir():
        raise DovecotUnavailableError(
            f"{ROOT_ENV}={value} is not a system root (no etc/passwd or tmp); "
            "make one with debootstrap or unset the variable."
        )
    return root


def find_binary(name: str) -> str:
    """Return the path of a Dovecot binary or raise with install instructions.

    Below ``dovecot_root()`` the path is the one seen inside that root.
    """
    root = dovecot_root()
    if root is not None:
        for directory in ("usr/sbin", "usr/bin"):
            if (root / directory / name).is_file():
                return f"/{directory}/{name}"
        raise DovecotUnavailableError(
            f"'{name}' is not installed in {root}; run "
            f"chroot {root} apt-get install -y dovecot-imapd dovecot-pop3d"
        )
    path = shutil.which(name, path=_SBIN_PATH)
    if path is None:
        raise DovecotUnavailableError(
            f"'{name}' is not installed; run scripts/ensure-dovecot "
            "(installs the Debian packages dovecot-imapd and dovecot-pop3d)."
        )
    return path


def dovecot_command(name: str, *args: str) -> list[str]:
    """The command line that runs Dovecot's program *name* with *args*."""
    binary = find_binary(name)
    root = dovecot_root()
    if root is None:
        return [binary, *args]
    chroot = shutil.which("chroot", path=_SBIN_PATH) or "chroot"
    return [chroot, str(root), binary, *args]


def dovecot_version() -> tuple[int, int] | None:
    """Return the (major, minor) version of the installed Dovecot.

    None when ``dovecot --version`` does not print a version.
    """
    output = subprocess.run(
        dovecot_command("dovecot", "--version"),
        capture_output=True,
        text=True,
    ).stdout
    return parse_version(output)


def system_ids(root: Path | None) -> tuple[int, int, int]:
    """The uid and gid of ``mail`` and the gid of ``dovecot`` in *root*.

    *root* None means this machine's own accounts. Raises KeyError naming
    the account that is missing.
    """
    if root is None:
        return (
            pwd.getpwnam("mail").pw_uid,
            grp.getgrnam("mail").gr_gid,
            grp.getgrnam("dovecot").gr_gid,
        )

    def ids(table: str) -> dict[str, int]:
        rows = (root / "etc" / table).read_text().splitlines()
        fields = [row.split(":") for row in rows if row.count(":") >= 3]
        return {field[0]: int(field[2]) for field in fields}

    users, groups = ids("passwd"), ids("group")
    for name, table in (("mail", users), ("mail", groups), ("dovecot", groups)):
        if name not in table:
            raise KeyError(name)
    return users["mail"], groups["mail"], groups["dovecot"]


def parse_version(output: str) -> tuple[int, int] | None:
    """(major, minor) from ``dovecot --version`` ("2.3.19.1 (9b53102964)")."""
    match = re.match(r"\s*(\d+)\.(\d+)", output)
    return (int(match[1]), int(match[2])) if match else None


def unsupported_version_message(version: tuple[int, int] | None) -> str:
    """One sentence that says which Dovecot versions the fixture supports."""
    found = "an unknown version" if version is None else f"{version[0]}.{version[1]}"
    return (
        f"The test Dovecot needs Dovecot 2.3 (Debian 12) or 2.4 (Debian 13, "
        f"Ubuntu 25.04 and later), but this machine has {found}."
    )


def _free_ports(count: int) -> list[int]:
    # All sockets stay bound until every port is picked so the ports differ.
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def generate_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Create a CA and a server certificate for localhost/127.0.0.1.

    Writes ``ca.pem``, ``server.pem`` and ``server.key`` into *directory* and
    returns their paths. Re-running overwrites them with a new CA.
    """
    now = datetime.datetime.now(datetime.UTC)
    # Backdated so that clock skew between test processes never matters.
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailarchive tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_SUBJECT),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(SERVER_NAME),
                    x509.IPAddress(ipaddress.IPv4Address(HOST)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        key_file,
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return ca_file, cert_file, key_file


class DovecotServer:
    """One private Dovecot instance in a temporary directory.

    ``start()`` writes the configuration and starts the master process;
    ``stop()`` stops it and removes the directory. Several instances can run
    at the same time. ``imap_capability`` replaces the capability list the
    IMAP server announces (e.g. to hide UIDPLUS).
    """

    def __init__(
        self,
        *,
        imap_capability: str | None = None,
        auth_mechanisms: str = "plain login xoauth2 oauthbearer",
    ) -> None:
        self.host = HOST
        self._imap_capability = imap_capability
        self._auth_mechanisms = auth_mechanisms
        self._root: Path | None = None
        # The system root Dovecot runs in (None: this machine's own) and the
        # instance directory as Dovecot sees it from there.
        self._system_root: Path | None = None
        self._server_root: Path | None = None
        self._ports: dict[str, int] = {}
        self._users: dict[str, str] = {}
        self._paths: dict[tuple[str, str], Path] = {}
        self._mail_uid = self._mail_gid = self._dovecot_gid = -1

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def root(self) -> Path:
        if self._root is None:
            raise RuntimeError("the Dovecot server is not started")
        return self._root

    @property
    def imap_port(self) -> int:
        return self._ports["imap"]

    @property
    def imaps_port(self) -> int:
        return self._ports["imaps"]

    @property
    def pop3_port(self) -> int:
        return self._ports["pop3"]

    @property
    def pop3s_port(self) -> int:
        return self._ports["pop3s"]

    @property
    def ca_file(self) -> str:
        return str(self.root / "tls" / "ca.pem")

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Create the instance directory, configure and start Dovecot.

        Waits until every port accepts connections. Not re-entrant: call
        ``stop()`` before starting again. Raises ``DovecotUnavailableError``
        when Dovecot is missing or cannot run here.
        """
        if self._root is not None:
            raise RuntimeError("the Dovecot server is already started")
        system_root = dovecot_root()
        dovecot = dovecot_command("dovecot")
        find_binary("doveadm")
        if os.geteuid() != 0:
            raise DovecotUnavailableError(
                "the test Dovecot must be started as root (it switches to the "
                "users dovenull, dovecot and mail)"
            )
        version = dovecot_version()
        if version not in SUPPORTED_VERSIONS:
            raise DovecotUnavailableError(unsupported_version_message(version))
        try:
            self._mail_uid, self._mail_gid, self._dovecot_gid = system_ids(system_root)
        except KeyError as error:
            raise DovecotUnavailableError(
                f"system account missing ({error}); reinstall Dovecot with "
                "scripts/ensure-dovecot"
            ) from error
        root = Path(
            tempfile.mkdtemp(
                prefix="mailarchive-dovecot-",
                dir=None if system_root is None else system_root / "tmp",
            )
        )
        # Dovecot's unprivileged processes (mail, dovecot, dovenull) must be
        # able to reach their files below this directory.
        root.chmod(0o755)
        self._root = root
        self._system_root = system_root
        self._server_root = (
            root if system_root is None else Path("/") / root.relative_to(system_root)
        )
        try:
            (root / "tls").mkdir()
            generate_certificates(root / "tls")
            (root / "mail").mkdir()
            (root / "passwd").mkdir()
            (root / "jwt-keys").mkdir()
            if version == (2, 3):
                (root / OAUTH2_CONFIG_23).write_text(
                    render_oauth2_config_23(self._server_root)
                )
            # A port picked as free can be taken by someone else before
            # Dovecot binds it; such a start fails fast and is retried.
            for attempt in range(3):
                self._ports = dict(
                    zip(("imap", "imaps", "pop3", "pop3s"), _free_ports(4), strict=True)
                )
                self.config_file.write_text(self._config(version))
                startup_log = root / "startup.log"
                # The daemon inherits stdout/stderr; pipes would never reach
                # EOF while it runs, so they go to a file.
                with startup_log.open("wb") as output:
                    returncode = subprocess.run(
                        [*dovecot, "-c", str(self._inside(self.config_file))],
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    ).returncode
                if returncode == 0 and self._wait_until_listening():
                    return
                self._kill_master()
                problems = startup_log.read_text(errors="replace") + self._log_text()
                if attempt == 2 or "in use" not in problems:
                    raise DovecotUnavailableError(
                        f"Dovecot did not start (exit {returncode}):\n{problems}"
                    )
        except BaseException:
            self._remove_root()
            raise

    def stop(self) -> None:
        """Stop Dovecot and delete the instance directory. Safe to re-run."""
        if self._root is None:
            return
        try:
            subprocess.run(
                dovecot_command(
                    "doveadm", "-c", str(self._inside(self.config_file)), "stop"
                ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=STOP_TIMEOUT,
            )
            self._wait_master_gone()
        finally:
            self._kill_master()
            self._remove_root()

    def _inside(self, path: Path) -> Path:
        """*path* below the instance directory as Dovecot sees it."""
        assert self._server_root is not None
        return self._server_root / path.relative_to(self.root)

    def _outside(self, path: Path) -> Path:
        """A path Dovecot reported, as this process reaches it."""
        if self._system_root is None:
            return path
        return self._system_root / path.relative_to("/")

    def _remove_root(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
        self._root = self._server_root = self._system_root = None
        self._paths.clear()
        self._users.clear()

    def _master_pid(self) -> int | None:
        try:
            return int((self.root / "run" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _wait_master_gone(self) -> None:
        pid = self._master_pid()
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid is not None and _process_alive(pid):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def _kill_master(self) -> None:
        pid = self._master_pid()
        if pid is None or not _process_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        self._wait_master_gone()
        if _process_alive(pid):
            os.kill(pid, signal.SIGKILL)

    def _wait_until_listening(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        pending = set(self._ports.values())
        while pending:
            for port in sorted(pending):
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection((self.host, port), timeout=1),
                ):
                    pending.discard(port)
            if not pending:
                return True
            pid = self._master_pid()
            if time.monotonic() > deadline or (pid and not _process_alive(pid)):
                return False
            time.sleep(0.05)
        return True

    def _log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def _config(self, version: tuple[int, int]) -> str:
        return render_config(
            version,
            ConfigValues(
                root=self._inside(self.root),
                host=self.host,
                ports=dict(self._ports),
                mail_uid=self._mail_uid,
                mail_gid=self._mail_gid,
                auth_mechanisms=self._auth_mechanisms,
                imap_capability=self._imap_capability,
            ),
        )

    def trust_jwt_key(self, *, alg: str, kid: str, key: bytes, azp: str = "") -> None:
        """Accept JWT access tokens signed with *key* from now on.

        For HS* algorithms *key* is the shared secret; for RS*/ES* it is the
        PEM public key. Tokens without an ``azp`` claim are looked up under
        ``default``. Safe to re-run (the key is replaced).
        """
        value = base64.b64encode(key) if alg.upper().startswith("HS") else key
        directory = self.root / "jwt-keys" / (azp or "default") / alg.upper()
        directory.mkdir(parents=True, exist_ok=True)
        for path in (directory.parent, directory):
            path.chmod(0o755)
        staging = directory / f".{kid}.new"
        staging.write_bytes(value)
        os.chown(staging, 0, self._dovecot_gid)
        staging.chmod(0o640)
        staging.replace(directory / kid)

    # -- users and folders ---------------------------------------------------

    def _home(self, user: str) -> Path:
        return self.root / "mail" / user

    def add_user(self, name: str, password: str) -> None:
        """Create a mail user with an empty INBOX. Fails if the user exists."""
        for value in (name, password):
            if not value or any(c in value for c in ":\n\r\0"):
                raise ValueError(f"unusable in a passwd-file: {value!r}")
        if "/" in name or name.startswith(".") or "%" in name:
            raise ValueError(f"unusable as a user name: {name!r}")
        if name in self._users:
            raise ValueError(f"user {name!r} exists already")
        line = (
            f"{name}:{{PLAIN}}{password}:{self._mail_uid}:{self._mail_gid}::"
            f"{self._inside(self._home(name))}::\n"
        )
        # Written aside and renamed so Dovecot never reads half a file.
        staging = self.root / "passwd" / f".{name}.new"
        staging.write_text(line)
        os.chown(staging, 0, self._dovecot_gid)
        staging.chmod(0o640)
        staging.replace(self.root / "passwd" / name)
        self._users[name] = password
        home = self._home(name)
        home.mkdir(exist_ok=True)
        os.chown(home, self._mail_uid, self._mail_gid)
        self._ensure_maildir(home / "Maildir")

    def _ensure_maildir(self, directory: Path) -> None:
        for path in (
            directory,
            directory / "cur",
            directory / "new",
            directory / "tmp",
        ):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, self._mail_uid, self._mail_gid)

    def _doveadm(self, *args: str) -> str:
        result = subprocess.run(
            dovecot_command(
                "doveadm", "-c", str(self._inside(self.config_file)), *args
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"doveadm {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.strip()}"
            )
        return result.stdout

    def folder_path(self, user: str, folder: str = "INBOX") -> Path:
        """Return the Maildir directory that holds *folder* of *user*."""
        key = (user, folder)
        if key not in self._paths:
            path = self._doveadm("mailbox", "path", "-u", user, folder).strip()
            self._paths[key] = self._outside(Path(path))
        return self._paths[key]

    def create_folder(self, user: str, name: str) -> None:
        """Create an (empty, subscribed) IMAP folder. Fails if it exists."""
        self._doveadm("mailbox", "create", "-s", "-u", user, name)

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Return the folder's current UIDVALIDITY as the server reports it."""
        output = self._doveadm(
            "-f", "flow", "mailbox", "status", "-u", user, "uidvalidity", folder
        )
        return int(output.strip().split("=", 1)[1])

    # -- messages ------------------------------------------------------------

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Put one message into *folder* by writing it into the Maildir.

        The bytes are stored unchanged. Dovecot sends them with CRLF line
        endings whatever is stored (a Maildir normally holds LF).
        """
        self.deliver_many(user, [raw], folder)

    def deliver_many(
        self, user: str, raws: Iterable[bytes], folder: str = "INBOX"
    ) -> None:
        """Put messages into *folder*, in order, straight into the Maildir."""
        directory = self.folder_path(user, folder)
        if not (directory / "cur").is_dir():
            raise ValueError(f"{user} has no folder {folder!r}; create_folder first")
        self._ensure_maildir(directory)
        tmp, new = directory / "tmp", directory / "new"
        for raw in raws:
            # Maildir names must be unique; the counter also keeps them in
            # delivery order for mailbox_raws().
            name = (
                f"{time.time_ns()}.M{next(_delivery_counter):09d}P{os.getpid()}"
                f".mailarchive-test,S={len(raw)}"
            )
            staging = tmp / name
            staging.write_bytes(raw)
            os.chown(staging, self._mail_uid, self._mail_gid)
            staging.replace(new / name)

    def _message_files(self, user: str, folder: str) -> list[Path]:
        directory = self.folder_path(user, folder)
        files = [
            path
            for sub in ("new", "cur")
            if (directory / sub).is_dir()
            for path in (directory / sub).iterdir()
        ]
        return sorted(files, key=lambda path: path.name)

    def message_count(self, user: str, folder: str = "INBOX") -> int:
        """Return how many messages are in *folder* on the server right now."""
        return len(self._message_files(user, folder))

    def mailbox_raws(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """Return the stored bytes of every message in *folder*, oldest first."""
        return [path.read_bytes() for path in self._message_files(user, folder)]

    def recreate_mailbox(self, user: str, folder: str = "INBOX") -> None:
        """Delete and recreate *folder* with the same messages, new UIDVALIDITY.

        Emulates a server that rebuilt a mailbox: every message gets a new UID
        in a new UIDVALIDITY generation. Call it while no client is connected.
        Raises if the server did not change the UIDVALIDITY.
        """
        before = self.uidvalidity(user, folder)
        raws = self.mailbox_raws(user, folder)
        directory = self.folder_path(user, folder)
        for sub in ("cur", "new", "tmp"):
            shutil.rmtree(directory / sub, ignore_errors=True)
        for path in directory.iterdir():
            # Subfolders (".Name" in Maildir++) and the user-wide UIDVALIDITY
            # counter stay; the folder's own UID list and indexes go.
            if path.is_file() and path.name.startswith("dovecot"):
                if path.name.startswith("dovecot-uidvalidity"):
                    continue
                path.unlink()
        list_index = self.folder_path(user, "INBOX")
        for path in list_index.glob("dovecot.list.index*"):
            path.unlink()
        self._ensure_maildir(directory)
        self.deliver_many(user, raws, folder)
        after = self.uidvalidity(user, folder)
        if after == before:
            raise RuntimeError(f"UIDVALIDITY of {folder} stayed {before}")


SUPPORTED_VERSIONS = ((2, 3), (2, 4))
OAUTH2_CONFIG_23 = "dovecot-oauth2.conf.ext"


@dataclass(frozen=True)
class ConfigValues:
    """What varies between instances: paths, ports, users, mechanisms."""

    root: Path
    host: str
    ports: dict[str, int]
    mail_uid: int
    mail_gid: int
    auth_mechanisms: str
    imap_capability: str | None = None


def render_config(version: tuple[int, int], values: ConfigValues) -> str:
    """The ``dovecot.conf`` of one instance in the syntax of ``version``.

    Both variants configure the same server: IMAP, IMAPS, POP3 and POP3S on
    the given loopback ports, one passwd-file per user as passdb and userdb,
    Maildir under each user's home, OAuth2 bearer tokens validated locally
    against the keys in ``jwt-keys/``, and no delays after failed logins.
    """
    if version == (2, 3):
        return _render_config_23(values)
    if version == (2, 4):
        return _render_config_24(values)
    raise DovecotUnavailableError(unsupported_version_message(version))


def render_oauth2_config_23(root: Path) -> str:
    """Dovecot 2.3's oauth2 passdb file (2.4 puts these in dovecot.conf)."""
    return f"""\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={root}/jwt-keys/
username_attribute = email
"""


def _render_config_23(values: ConfigValues) -> str:
    root, host, ports = values.root, values.host, values.ports
    capability = (
        f"  imap_capability = {values.imap_capability}\n"
        if values.imap_capability
        else ""
    )
    return f"""\
# Private test instance; nothing here refers to /etc/dovecot.
instance_name = mailarchive-test-{root.name}
base_dir = {root}/run
state_dir = {root}/state
listen = {host}
protocols = imap pop3
default_login_user = dovenull
default_internal_user = dovecot
log_path = {root}/dovecot.log
auth_verbose = yes

ssl = yes
ssl_cert = <{root}/tls/server.pem
ssl_key = <{root}/tls/server.key
ssl_min_protocol = TLSv1.2
# Plain logins are allowed on unencrypted connections so that the plain
# IMAP/POP3 paths can be tested on loopback.
disable_plaintext_auth = no
auth_mechanisms = {values.auth_mechanisms}
# Wrong-password tests would otherwise wait two seconds each.
auth_failure_delay = 0

mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
mail_uid = {values.mail_uid}
mail_gid = {values.mail_gid}
first_valid_uid = {values.mail_uid}
first_valid_gid = {values.mail_gid}
pop3_uidl_format = %08Xu%08Xv

# One file per user: Dovecot re-reads a changed passwd-file at most once a
# second, so users added in quick succession would go unseen in a shared one.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd/%u
  mechanisms = plain login
}}
# Bearer tokens (XOAUTH2, OAUTHBEARER): JWTs checked against trusted keys.
passdb {{
  driver = oauth2
  args = {root}/{OAUTH2_CONFIG_23}
  mechanisms = xoauth2 oauthbearer
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd/%u
}}

protocol imap {{
{capability}}}

# Auth delays repeated failures from one address by up to 15 seconds, which
# would make every wrong-password test slow; it turns the penalty off when it
# cannot reach this socket.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    address = {host}
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {host}
    port = {ports["pop3"]}
  }}
  inet_listener pop3s {{
    address = {host}
    port = {ports["pop3s"]}
    ssl = yes
  }}
}}
"""


def _render_config_24(values: ConfigValues) -> str:
    # Dovecot 2.4 renamed and split many 2.3 settings (its "Upgrading
    # Dovecot CE from 2.3 to 2.4" guide): the two version settings come
    # first, ssl_cert/ssl_key became ssl_server_{cert,key}_file (paths, no
    # "<"), disable_plaintext_auth became auth_allow_cleartext, mail_location
    # became mail_driver + mail_path, passdb/userdb blocks need a name and
    # take named settings instead of "args", passdb "mechanisms" became
    # mechanisms_filter, %u became %{user}, and the OAuth2 mechanisms no
    # longer go through a passdb but use the global oauth2 filter, with the
    # key dictionary in oauth2_local_validation. Listeners take no address of
    # their own in 2.4 (2.4.1 refuses "address" as an unknown setting), so
    # the global listen keeps them on loopback. Run against Dovecot 2.4.1
    # from a Debian 13 root (MAILARCHIVE_TEST_DOVECOT_ROOT).
    root, host, ports = values.root, values.host, values.ports
    capability = (
        f"  imap_capability = {values.imap_capability}\n"
        if values.imap_capability
        else ""
    )
    return f"""\
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0

# Private test instance; nothing here refers to /etc/dovecot.
instance_name = mailarchive-test-{root.name}
base_dir = {root}/run
state_dir = {root}/state
listen = {host}
protocols = imap pop3
default_login_user = dovenull
default_internal_user = dovecot
log_path = {root}/dovecot.log
auth_verbose = yes

ssl = yes
ssl_server_cert_file = {root}/tls/server.pem
ssl_server_key_file = {root}/tls/server.key
ssl_min_protocol = TLSv1.2
# Plain logins are allowed on unencrypted connections so that the plain
# IMAP/POP3 paths can be tested on loopback.
auth_allow_cleartext = yes
auth_mechanisms = {values.auth_mechanisms}
# Wrong-password tests would otherwise wait two seconds each.
auth_failure_delay = 0

mail_driver = maildir
mail_path = ~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
mail_uid = {values.mail_uid}
mail_gid = {values.mail_gid}
first_valid_uid = {values.mail_uid}
first_valid_gid = {values.mail_gid}
pop3_uidl_format = %{{uid | hex(8)}}%{{uidvalidity | hex(8)}}

# One file per user: Dovecot re-reads a changed passwd-file at most once a
# second, so users added in quick succession would go unseen in a shared one.
passdb passwd-file {{
  passwd_file_path = {root}/passwd/%{{user}}
  mechanisms_filter = plain login
}}
userdb passwd-file {{
  passwd_file_path = {root}/passwd/%{{user}}
}}
# Bearer tokens (XOAUTH2, OAUTHBEARER): JWTs checked against trusted keys.
oauth2 {{
  introspection_mode = local
  username_attribute = email
  oauth2_local_validation {{
    dict fs {{
      fs posix {{
        prefix = {root}/jwt-keys/
      }}
    }}
  }}
}}

protocol imap {{
{capability}}}

# Auth delays repeated failures from one address by up to 15 seconds, which
# would make every wrong-password test slow; it turns the penalty off when it
# cannot reach this socket.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}

service imap-login {{
  inet_listener imap {{
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {ports["pop3"]}
  }}
  inet_listener pop3s {{
    port = {ports["pop3s"]}
    ssl = yes
  }}
}}
"""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers signal 0; it is gone for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A running Dovecot shared by the whole test session."""
    server = DovecotServer()
    try:
        server.start()
    except DovecotUnavailableError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A new mail user with an empty INBOX on the session's Dovecot."""
    user = MailUser(
        username=f"user{secrets.token_hex(6)}", password=secrets.token_urlsafe(16)
    )
    dovecot.add_user(user.username, user.password)
    return user
