"""An S3-compatible object store for the tests: moto's server, in a process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
import requests

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class ObjectStore:
    endpoint_url: str

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def new_bucket(self) -> str:
        name = f"mailarchive-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def names(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in pages.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )

    def environment(self, bucket: str) -> dict[str, str]:
        """The variables that point the archive at ``bucket``."""
        return {
            "MAILARCHIVE_TEST_S3_BUCKET": bucket,
            "MAILARCHIVE_S3_ENDPOINT_URL": self.endpoint_url,
            "MAILARCHIVE_S3_REGION": REGION,
            **CREDENTIALS,
        }

    def storages(self, bucket: str, base: dict) -> dict:
        """``STORAGES`` with the default storage in ``bucket``."""
        return {
            **base,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": bucket,
                    "endpoint_url": self.endpoint_url,
                    "region_name": REGION,
                    "access_key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    "secret_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    "file_overwrite": True,
                    "default_acl": None,
                    "querystring_auth": False,
                },
            },
        }


@pytest.fixture(scope="session")
def object_store(tmp_path_factory) -> Iterator[ObjectStore]:
    """An S3 server on a loopback port for the whole session."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path_factory.mktemp("s3") / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **CREDENTIALS},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url, timeout=2)
            break
        except requests.RequestException:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the S3 server did not start (see {log.name})")
            time.sleep(0.2)
    try:
        yield ObjectStore(endpoint_url=url)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
