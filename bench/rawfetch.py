"""The limit: download a whole mailbox with plain imaplib or poplib, keep nothing.

This is what any archiver must at least do: connect, log in, transfer every
message. IMAP fetches ``BODY.PEEK[]`` in batches of ``--batch`` UIDs (the
fastest plain way); POP3 sends RETR for each message (the only way). Nothing is
parsed, stored or deleted. Prints one JSON line: messages, bytes and the
seconds from connect to logout (interpreter start-up excluded), the same span
the archive's and the peer's figures cover. Standard library only.

    python bench/rawfetch.py --protocol imaps --host 127.0.0.1 --port 993 \\
        --user u --password-stdin --ca ca.pem
"""

from __future__ import annotations

import argparse
import imaplib
import json
import poplib
import ssl
import sys
import time


def fetch_imap(
    host: str, port: int, user: str, password: str, context: ssl.SSLContext, batch: int
) -> tuple[int, int]:
    """Every message of INBOX over IMAPS; returns (messages, bytes)."""
    client = imaplib.IMAP4_SSL(host, port, ssl_context=context)
    messages = size = 0
    try:
        client.login(user, password)
        client.select("INBOX", readonly=True)
        _typ, data = client.uid("SEARCH", None, "ALL")
        uids = data[0].split()
        for start in range(0, len(uids), batch):
            group = b",".join(uids[start : start + batch]).decode()
            _typ, data = client.uid("FETCH", group, "(BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    messages += 1
                    size += len(item[1])
    finally:
        client.logout()
    return messages, size


def fetch_pop3(
    host: str, port: int, user: str, password: str, context: ssl.SSLContext
) -> tuple[int, int]:
    """Every message over POP3S with RETR; returns (messages, bytes)."""
    client = poplib.POP3_SSL(host, port, context=context)
    messages = size = 0
    try:
        client.user(user)
        client.pass_(password)
        count, _octets = client.stat()
        for number in range(1, count + 1):
            _response, lines, _octets = client.retr(number)
            messages += 1
            size += sum(len(line) + 2 for line in lines)
    finally:
        client.quit()
    return messages, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=["imaps", "pop3s"], required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-stdin", action="store_true", required=True)
    parser.add_argument("--ca", required=True, help="CA file the server's cert is from")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    password = sys.stdin.readline().rstrip("\r\n")
    context = ssl.create_default_context(cafile=args.ca)
    started = time.perf_counter()
    if args.protocol == "imaps":
        messages, size = fetch_imap(
            args.host, args.port, args.user, password, context, args.batch
        )
    else:
        messages, size = fetch_pop3(args.host, args.port, args.user, password, context)
    seconds = time.perf_counter() - started
    print(json.dumps({"messages": messages, "bytes": size, "seconds": seconds}))


if __name__ == "__main__":
    main()
