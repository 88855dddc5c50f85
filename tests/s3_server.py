"""The S3 server fixture: one moto server per test session (components/platform/local_s3.py).

Each test takes its own bucket (``s3_server.bucket()``), so tests never see each other's
objects.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.platform.local_s3 import S3Server, running_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3 server for the test session (``running_s3_server``)."""
    with running_s3_server() as server:
        yield server
