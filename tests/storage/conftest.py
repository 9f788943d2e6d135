"""An S3-compatible server for the storage tests: moto's server mode on 127.0.0.1, reached by s3fs
over real HTTP (the storage seam itself is not mocked). One server per test session; each test
module gets its own bucket."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator

import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL; the environment points s3fs (here and in CLI subprocesses) at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {name: os.environ.get(name) for name in [*_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(_ENV, AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def bucket(s3_server: str) -> str:
    """A fresh bucket's URL, ``s3://<name>``."""
    from nearid_data.engine.storage import filesystem

    name = f"nearid-{secrets.token_hex(4)}"
    filesystem("s3").mkdir(name)
    return f"s3://{name}"
