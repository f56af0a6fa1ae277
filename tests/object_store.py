"""A real S3 HTTP endpoint on 127.0.0.1 (moto's server) for the object-store tests: a bucket, and the AWS_*
variables every process started afterwards (a spawned worker, a Dagster step) reads its endpoint and keys from."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

KEY, SECRET = "tradeflow-test-key", "tradeflow-test-secret-9f3a"


@contextmanager
def s3_bucket(monkeypatch: pytest.MonkeyPatch, bucket: str = "tradeflow") -> Iterator[str]:
    """Yield `s3://<bucket>` on a fresh local S3 server; the credentials live only in the environment."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        # moto keeps its buckets per Python process, not per server: start from an empty store.
        urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"))
        for name, value in {
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        import fsspec
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()  # an instance made for an earlier server would keep its endpoint
        fs, _ = fsspec.url_to_fs(f"s3://{bucket}", skip_instance_cache=True)
        fs.mkdir(bucket)
        yield f"s3://{bucket}"
    finally:
        server.stop()
