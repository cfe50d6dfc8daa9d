"""One storage test suite, two backends: every test taking ``backend`` runs on a real directory and on a real
S3-compatible server (moto's, started once per session on loopback), each test under its own key prefix."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiobotocore.session import get_session

from reelgate.storage import DirectoryStorage, S3Location, S3Storage, Storage
from storage.s3_server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

BUCKET = "reelgate-test"
MIB = 1024 * 1024


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with MotoS3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        server.make_bucket(BUCKET)
        yield server


def s3_location(server: MotoS3, prefix: str, **changes: object) -> S3Location:
    fields: dict[str, object] = {"bucket": BUCKET, "prefix": prefix, "endpoint_url": server.endpoint,
                                 "region": REGION, "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}  # fmt: skip
    fields.update(changes)
    return S3Location(**fields)  # type: ignore[arg-type]


@dataclass
class Backend:
    """A backend under test and how to look behind it: every object and every unfinished write it holds."""

    kind: str
    storage: Storage
    root: Path | None = None  # the directory backend's root
    server: MotoS3 | None = None
    prefix: str = ""

    async def leftovers(self) -> list[str]:
        """Everything stored, temporary or incomplete writes included (an S3 upload as ``upload:<key>``)."""
        if self.root is not None:
            return sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
        assert self.server is not None
        async with raw_s3(self.server) as s3:
            listed = await s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{self.prefix}/")
            uploads = await s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{self.prefix}/")
        objects = [o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", [])]
        return sorted(objects + [f"upload:{u['Key'].rsplit('/', 1)[-1]}" for u in uploads.get("Uploads", [])])

    async def abandon_a_write(self, name: str) -> None:
        """What a process killed mid-write leaves: a temporary file, or a multipart upload never completed."""
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            aside = self.root / f".tmp-abandoned-{name}"
            aside.write_bytes(b"half")
            os.utime(aside, (time.time() - 3600, time.time() - 3600))
            return
        assert self.server is not None
        async with raw_s3(self.server) as s3:
            upload = await s3.create_multipart_upload(Bucket=BUCKET, Key=f"{self.prefix}/{name}")
            await s3.upload_part(Bucket=BUCKET, Key=f"{self.prefix}/{name}", UploadId=upload["UploadId"],
                                 PartNumber=1, Body=b"half")  # fmt: skip


_SESSION = get_session()  # loads botocore's S3 model once for the whole run


def raw_s3(server: MotoS3):  # type: ignore[no-untyped-def]
    """A plain client of the test server, to look at the bucket from outside the backend under test."""
    return _SESSION.create_client("s3", endpoint_url=server.endpoint, region_name=REGION,
                                       aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)  # fmt: skip


@contextlib.asynccontextmanager
async def s3_backend_on(server: MotoS3) -> AsyncIterator[Backend]:
    """An S3 backend on the test server under a prefix of its own, with parts of S3's smallest size (5 MiB)."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(s3_location(server, prefix), part_size=5 * MIB, attempts=2)
    try:
        yield Backend("s3", storage, server=server, prefix=prefix)
    finally:
        await storage.aclose()


@pytest.fixture(params=["directory", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "directory":
        root = tmp_path / "objects"
        yield Backend("directory", DirectoryStorage(root), root=root)
        return
    async with s3_backend_on(request.getfixturevalue("s3_server")) as s3:
        yield s3


@pytest.fixture
async def s3(s3_server: MotoS3) -> AsyncIterator[Backend]:
    """The S3 backend alone, for what only it has."""
    async with s3_backend_on(s3_server) as s3:
        yield s3
