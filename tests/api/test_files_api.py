"""The file API on a real server (uvicorn on loopback) and a real database: the three uploads in EvoLink's shape,
images only by content, the size cap on a stream written as it arrives, the quota, tenancy, expiry, and a file URL
used in a generation request, read from storage (the URL's host does not even resolve)."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest
from PIL import Image

from fakes import mediagen
from fakes.media_server import MediaServer
from harness import image_body, make_settings
from reelgate.api.openapi import openapi_document
from reelgate.api.openapi_files import file_paths, file_schemas
from reelgate.catalog import default_catalog
from reelgate.errors import InvalidRequest
from reelgate.files import FileService
from reelgate.media.pool import MediaPool
from reelgate.storage import DirectoryStorage
from reelgate.store.accounts import KeyOwner
from reelgate.store.files import FileStore
from reelgate.store.sql import Store
from served import Served, serve

MB = 1024 * 1024
PUBLIC = "http://reelgate-files.invalid"  # .invalid never resolves: a file URL fetched over HTTP would fail
FILES = "/api/v1/files"
# The store's statements run on both engines in tests/store/test_files.py; the rows of these tests, on SQLite only.
DOCUMENT_SCHEMAS = openapi_document(default_catalog(()))["components"]["schemas"]  # Error and what it refers to
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
FILE_FIELDS = {"file_id", "file_name", "original_name", "file_size", "mime_type", "upload_path", "file_url",
               "download_url", "upload_time", "expires_at"}  # fmt: skip


def _settings(tmp_path: Path, db_url: str, **changes: Any) -> Any:
    base = {"public_base_url": PUBLIC, "file_quota": 4, "image_max_bytes": 4 * MB, "max_body_bytes": 12 * MB}
    return make_settings(tmp_path, db_url, **{**base, **changes})


@pytest.fixture
async def served(tmp_path: Path, db_url: str) -> AsyncIterator[Served]:
    async with serve(_settings(tmp_path, db_url)) as running:
        yield running


def _conforms(body: dict[str, Any], response: httpx.Response) -> None:
    """The answer is what the OpenAPI document (api/openapi_files.py) says this route answers with this status."""
    path = response.request.url.path
    route = next(p for p in file_paths() if p == path or p == f"{FILES}/{{file_id}}" and path.count("/") == 4)
    operation = file_paths()[route][response.request.method.lower()]
    schema = operation["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": {"schemas": {**DOCUMENT_SCHEMAS, **file_schemas()}}})


def _data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is True and body["code"] == 200
    _conforms(body, response)
    return body["data"]  # type: ignore[no-any-return]


def _refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False and body["code"] == status and body["msg"] == body["error"]["message"]
    _conforms(body, response)
    assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]


def _path(url: str) -> str:
    return httpx.URL(url).path


def _stored(served: Served) -> list[str]:
    """The objects in storage that are file API uploads (and any half-written temporary file)."""
    return [name for name in served.stored_files() if "-a" in name or name.startswith(".tmp")]


async def _upload(client: httpx.AsyncClient, data: bytes, name: str = "photo.png", **fields: str) -> dict[str, Any]:
    return _data(await client.post(f"{FILES}/upload/stream", files={"file": (name, data, "image/png")}, data=fields))


async def test_stream_upload_serves_lists_and_deletes_a_file_in_evolink_shape(served: Served) -> None:
    key = await served.key("acme")
    jpeg = mediagen.jpeg(800, 1000, scene=1)
    async with served.client(key) as client:
        # A JPEG named .png and declared image/png: the content decides; fields after the file, in camelCase.
        file = await _upload(client, jpeg, "holiday/photo.png", uploadPath="avatars/2025", fileName="me.jpg")
        assert set(file) == FILE_FIELDS
        assert (file["mime_type"], file["file_size"], file["original_name"]) == ("image/jpeg", len(jpeg), "photo.png")
        assert (file["file_name"], file["upload_path"]) == ("me.jpg", "avatars/2025")
        assert (
            file["file_url"].startswith(f"{PUBLIC}/files/") and file["download_url"] == file["file_url"] + "?download=1"
        )
        assert file["upload_time"].endswith("+00:00") and file["expires_at"] > file["upload_time"]

        got = await client.get(_path(file["file_url"]))
        assert got.status_code == 200 and got.content == jpeg
        assert got.headers["content-type"] == "image/jpeg" and got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-disposition"].startswith('inline; filename="me.jpg"')
        part = await client.get(_path(file["file_url"]), headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.content == jpeg[:10]
        download = await client.get(_path(file["download_url"]) + "?download=1")
        assert download.headers["content-disposition"].startswith("attachment;")

        listed = _data(await client.get(f"{FILES}/list", params={"page": 1, "pageSize": 10}))
        assert [f["file_id"] for f in listed["files"]] == [file["file_id"]] and listed["total"] == 1
        quota = _data(await client.get(f"{FILES}/quota"))
        assert quota == {"user_group": "default", "used_files": 1, "max_files": 4, "remain_files": 3,
                         "is_custom": False, "quota_reason": ""}  # fmt: skip

        assert _data(await client.delete(f"{FILES}/{file['file_id']}")) == {"file_id": file["file_id"], "deleted": True}
        _refused(await client.delete(f"{FILES}/{file['file_id']}"), 404, "file_not_found")
        assert (await client.get(_path(file["file_url"]))).status_code == 404
        assert _data(await client.get(f"{FILES}/list"))["files"] == []
    assert _stored(served) == []


@SQLITE_ONLY
async def test_base64_and_url_uploads_take_every_format_and_the_names(served: Served, tmp_path: Path) -> None:
    key = await served.key("acme")
    gif, webp, png = mediagen.gif(), mediagen.webp(), mediagen.png(640, 480, scene=3)
    with MediaServer() as media:
        media.serve("/pics/cat%20one.png", png, "application/octet-stream")  # the declared type plays no part
        media.serve("/page.html", b"<html><body>not an image</body></html>", "image/jpeg")
        async with served.client(key) as client:
            uri = "data:image/gif;base64," + base64.b64encode(gif).decode()
            a = _data(await client.post(f"{FILES}/upload/base64", json={"base64_data": uri, "file_name": "a.gif"}))
            bare = base64.b64encode(webp).decode()
            b = _data(await client.post(f"{FILES}/upload/base64", json={"base64_data": bare, "upload_path": "x/y"}))
            c = _data(await client.post(f"{FILES}/upload/url", json={"file_url": media.url("/pics/cat%20one.png")}))
            html = await client.post(f"{FILES}/upload/url", json={"file_url": media.url("/page.html")})
            missing = await client.post(f"{FILES}/upload/url", json={"file_url": media.url("/nope.png")})
            fetched = {_path(f["file_url"]): (await client.get(_path(f["file_url"]))).content for f in (a, b, c)}
    assert (a["mime_type"], a["file_name"], a["upload_path"]) == ("image/gif", "a.gif", "images")
    assert (b["mime_type"], b["upload_path"]) == ("image/webp", "x/y") and b["file_name"].endswith(".webp")
    assert (c["mime_type"], c["original_name"], c["file_size"]) == ("image/png", "cat one.png", len(png))
    assert sorted(fetched.values()) == sorted([gif, webp, png])
    assert "got an SVG/XML/HTML document" in _refused(html, 400, "unsupported_file_type")["message"]
    assert "HTTP 404" in _refused(missing, 400, "image_processing_error")["message"]


@SQLITE_ONLY
async def test_anything_but_an_image_is_refused_by_its_content_and_leaves_nothing(served: Served) -> None:
    key = await served.key("acme")
    bad = {
        "text named .png": b"hello, I am a text file with a .png name\n" * 20,
        "PDF": b"%PDF-1.7\n" + b"0" * 4000,
        "BMP": mediagen.encode(mediagen.picture(400, 400), "BMP"),
        "truncated JPEG": mediagen.jpeg(800, 800)[:20],
    }
    async with served.client(key) as client:
        answers = {what: await client.post(f"{FILES}/upload/stream", files={"file": ("a.png", data, "image/png")})
                   for what, data in bad.items()}  # fmt: skip
        as_base64 = await client.post(
            f"{FILES}/upload/base64", json={"base64_data": base64.b64encode(bad["PDF"]).decode()}
        )
        no_file = await client.post(f"{FILES}/upload/stream", files={"picture": ("a.png", b"x", "image/png")})
        two = await client.post(f"{FILES}/upload/stream", files=[("file", ("a.png", mediagen.gif(), "image/gif")),
                                                                  ("file", ("b.png", mediagen.gif(), "image/gif"))])  # fmt: skip
        not_a_form = await client.post(
            f"{FILES}/upload/stream", content=mediagen.gif(), headers={"Content-Type": "image/gif"}
        )
        no_data = await client.post(f"{FILES}/upload/base64", json={"file_name": "a.png"})
        bad_path = await client.post(f"{FILES}/upload/base64", json={"base64_data": "AAAA", "upload_path": "../etc"})
        assert _data(await client.get(f"{FILES}/quota"))["used_files"] == 0
    assert "got text" in _refused(answers["text named .png"], 400, "unsupported_file_type")["message"]
    assert "got a PDF document" in _refused(answers["PDF"], 400, "unsupported_file_type")["message"]
    assert "got a BMP image" in _refused(answers["BMP"], 400, "unsupported_file_type")["message"]
    assert "corrupt or truncated JPEG" in _refused(answers["truncated JPEG"], 400, "unsupported_file_type")["message"]
    assert _refused(as_base64, 400, "unsupported_file_type")["param"] == "base64_data"
    assert _refused(no_file, 400, "missing_parameter")["param"] == "file"
    assert "one file per request" in _refused(two, 400, "invalid_parameter")["message"]
    _refused(not_a_form, 400, "invalid_content_type")
    assert _refused(no_data, 400, "missing_parameter")["param"] == "base64_data"
    assert _refused(bad_path, 400, "invalid_parameter")["param"] == "upload_path"
    assert _stored(served) == []


def _noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


@SQLITE_ONLY
async def test_a_large_stream_goes_to_storage_as_it_arrives_and_is_cut_at_the_limit(served: Served) -> None:
    key = await served.key("acme")
    big = _noise_png(1100)  # ~3.6 MB, under the 4 MB limit
    boundary = "reelgate-test-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()  # fmt: skip
    tail = f"\r\n--{boundary}--\r\n".encode()
    seen_mid_upload: list[int] = []

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield head
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]
            if start == 2 * MB:  # halfway: the object is already being written, not held until the body ends
                await asyncio.sleep(0.2)
                seen_mid_upload.extend(p.stat().st_size for p in served.assets_dir.glob(".tmp-*"))
        yield tail

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}  # chunked: no Content-Length
    async with served.client(key) as client:
        stored = _data(await client.post(f"{FILES}/upload/stream", content=body(big), headers=headers))
        assert stored["file_size"] == len(big) and seen_mid_upload and max(seen_mid_upload) >= 2 * MB
        assert (await client.get(_path(stored["file_url"]))).content == big
        too_big = big + b"\0" * MB  # a valid PNG header, then more than the limit
        cut = await client.post(f"{FILES}/upload/stream", content=body(too_big), headers=headers)
        declared = await client.post(
            f"{FILES}/upload/stream", files={"file": ("a.png", too_big + too_big, "image/png")}
        )
        assert _data(await client.get(f"{FILES}/quota"))["used_files"] == 1
    assert "larger than 4 MB" in _refused(cut, 413, "file_too_large")["message"]
    _refused(declared, 413, "file_too_large")  # refused from Content-Length, before the body is read
    assert _stored(served) == [_path(stored["file_url"]).rpartition("/")[2]]  # no half-written or refused file


async def test_the_quota_is_per_account_and_frees_with_a_delete(served: Served) -> None:
    acme, globex = await served.key("acme"), await served.key("globex")
    gif = mediagen.gif()
    async with served.client(acme) as client, served.client(globex) as other:
        files = [await _upload(client, gif) for _ in range(4)]
        full = await client.post(f"{FILES}/upload/stream", files={"file": ("a.gif", gif, "image/gif")})
        error = _refused(full, 429, "quota_exceeded")
        assert "quota of 4" in error["message"] and int(full.headers["retry-after"]) > 3600
        assert _data(await client.get(f"{FILES}/quota"))["remain_files"] == 0
        await _upload(other, gif)  # another account's quota is its own
        await client.delete(f"{FILES}/{files[0]['file_id']}")
        await _upload(client, gif)


async def test_another_account_can_neither_list_delete_nor_use_a_file(served: Served) -> None:
    acme, globex = await served.key("acme", credits=10), await served.key("globex", credits=10)
    front = mediagen.jpeg(768, 1024, scene=11)
    async with served.client(acme) as owner, served.client(globex) as other:
        file = await _upload(owner, front)
        assert _data(await other.get(f"{FILES}/list"))["files"] == []
        _refused(await other.delete(f"{FILES}/{file['file_id']}"), 404, "file_not_found")
        side = await _upload(other, mediagen.jpeg(768, 1024, scene=12))
        task = (await other.post("/v1/videos/generations", json=image_body(file["file_url"], side["file_url"]))).json()
        done = await served.wait(other, task["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "image_processing_error"
    assert "uploaded by another account" in done["error"]["message"]
    async with served.client(acme) as owner:
        assert _data(await owner.get(f"{FILES}/list"))["total"] == 1  # still the owner's, untouched


@SQLITE_ONLY
async def test_an_element_is_made_from_uploaded_files_read_from_storage(served: Served) -> None:
    key = await served.key("acme", credits=10)
    front, side = mediagen.jpeg(768, 1024, scene=21), mediagen.png(768, 1024, scene=22)
    async with served.client(key) as client:
        a, b = await _upload(client, front), await _upload(client, side)
        assert httpx.URL(a["file_url"]).host == "reelgate-files.invalid"  # not reachable: never fetched over HTTP
        task = (await client.post("/v1/videos/generations", json=image_body(a["file_url"], b["file_url"]))).json()
        done = await served.wait(client, task["id"])
        assert done["status"] == "completed", done
        # The element keeps its own copies: deleting the uploads does not take its media.
        await client.delete(f"{FILES}/{a['file_id']}")
        copy = done["result_data"]["element_image_list"]["frontal_image"]
        assert "/assets/" in copy
        assert (await client.get(_path(copy))).content == front


@SQLITE_ONLY
async def test_a_file_past_its_retention_is_not_listed_served_used_and_is_swept(tmp_path: Path, db_url: str) -> None:
    async with serve(_settings(tmp_path, db_url, file_retention_hours=0.6 / 3600)) as running:
        key = await running.key("acme", credits=10)
        async with running.client(key) as client:
            file = await _upload(client, mediagen.jpeg(768, 1024, scene=31))
            other = await _upload(client, mediagen.jpeg(768, 1024, scene=32))
            await asyncio.sleep(max(0.0, _epoch(other["expires_at"]) - time.time()) + 0.1)  # the later of the two
            assert _data(await client.get(f"{FILES}/list"))["files"] == []
            assert _data(await client.get(f"{FILES}/quota"))["used_files"] == 0
            assert (await client.get(_path(file["file_url"]))).status_code == 404
            _refused(await client.delete(f"{FILES}/{file['file_id']}"), 404, "file_not_found")
            task = (
                await client.post("/v1/videos/generations", json=image_body(file["file_url"], other["file_url"]))
            ).json()
            done = await running.wait(client, task["id"])
        assert done["status"] == "failed" and "expired at" in done["error"]["message"]
        service = FileService(running.rt.settings, FileStore(running.rt.store.db), running.rt.service.assets.storage,
                              running.rt.service.media)  # fmt: skip
        assert _stored(running) != [] and await service.sweep() == 2
        assert _stored(running) == [] and await service.sweep() == 0
        await service.aclose()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@SQLITE_ONLY
async def test_uploads_of_one_account_take_at_most_its_places(served: Served) -> None:
    key, other = await served.key("acme"), await served.key("globex")
    release = asyncio.Event()
    boundary = "b0undary"

    async def slow() -> AsyncIterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.gif"\r\n\r\n'.encode()
        yield mediagen.gif()
        await release.wait()
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with served.client(key) as client, served.client(other) as them:
        running = [asyncio.create_task(client.post(f"{FILES}/upload/stream", content=slow(), headers=headers))
                   for _ in range(2)]  # fmt: skip
        await asyncio.sleep(0.3)
        third = await client.post(f"{FILES}/upload/stream", files={"file": ("a.gif", mediagen.gif(), "image/gif")})
        theirs = await them.post(f"{FILES}/upload/stream", files={"file": ("a.gif", mediagen.gif(), "image/gif")})
        release.set()
        assert [(await t).status_code for t in running] == [200, 200]
    assert _refused(third, 429, "too_many_concurrent_uploads") and third.headers["retry-after"] == "1"
    assert theirs.status_code == 200


@SQLITE_ONLY
async def test_url_uploads_follow_the_media_fetch_rules_for_private_addresses(tmp_path: Path, store: Store) -> None:
    settings = _settings(tmp_path, "sqlite://", allow_private_networks=False)
    files = FileService(settings, FileStore(store.db), DirectoryStorage(tmp_path / "files"), MediaPool(1, 1, MB))
    owner = KeyOwner(key_id=1, account_id=1, user_group="default", revoked=False, expires_at=None,
                     rate_limit_per_minute=None, max_in_flight=None)  # fmt: skip
    with MediaServer() as media:
        media.serve("/a.gif", mediagen.gif(), "image/gif")
        with pytest.raises(InvalidRequest, match="private, loopback or reserved") as refused:
            await files.upload_url(owner, {"file_url": media.url("/a.gif")})
        assert refused.value.param == "file_url" and media.seen == []
    with pytest.raises(InvalidRequest, match=r"http\(s\) URL"):
        await files.upload_url(owner, {"file_url": "file:///etc/passwd"})
    await files.aclose()
