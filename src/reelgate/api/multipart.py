"""A multipart/form-data body read as it arrives: one file part streamed chunk by chunk, small text fields kept.

Starlette's ``request.form()`` spools every file to a temporary file before the route sees it; an upload here goes
to storage as it arrives instead, so a process holds about one network read of it at a time. python-multipart's
push parser finds the boundaries (across reads); this module turns its callbacks into the file's chunks and the
form's fields. Bounded: the body (413), text fields (8 of at most 4 KiB each), part headers (the parser's limits);
every other part that carries a file is read past and dropped. A body over the file's limit is refused as the
file itself would be (413 ``file_too_large``), from its Content-Length when it declares one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from reelgate.errors import InvalidRequest, RequestTooLarge
from reelgate.media.uploads import too_large

MAX_FIELDS = 8
MAX_FIELD_BYTES = 4096
FORM_OVERHEAD = 64 * 1024  # boundaries, part headers and text fields beside the file


@dataclass
class _Part:
    """The part being read: its headers, and (for a text field) its value so far."""

    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


class MultipartFile:
    """The one part named ``file_field`` of a multipart body, streamed; the form's text fields beside it."""

    def __init__(self, request: Request, *, file_field: str, max_file: int) -> None:
        self._request = request
        self._file_field = file_field
        self._max_file = max_file
        self._max_body = max_file + FORM_OVERHEAD
        self._fields: dict[str, str] = {}
        self._events: list[tuple[str, bytes]] = []  # what the parser found in the last read
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._ended = False
        self._files_seen = 0
        self._parser = MultipartParser(_boundary(request), {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_piece, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done, "on_part_data": self._data,
            "on_part_end": self._part_end, "on_end": self._end,
        })  # fmt: skip
        self._stream = self._events_of_body()
        self.filename: str | None = None

    async def open(self) -> MultipartFile:
        """Read up to the file part's first byte (fields before it are kept); 400 when the body has no such part."""
        async for kind, _ in self._stream:
            if kind == "file":
                return self
        raise InvalidRequest(f"the form has no {self._file_field!r} part; send the image as multipart/form-data "
                             f"field {self._file_field!r}", param=self._file_field,
                             code="missing_parameter")  # fmt: skip

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive; after its last one, the rest of the body is read for its fields."""
        async for kind, data in self._stream:
            if kind == "data":
                yield data
            elif kind == "end_file":
                break
        async for kind, _ in self._stream:
            if kind == "file":
                raise InvalidRequest(f"send one file per request; the form has more than one {self._file_field!r} "
                                     "part", param=self._file_field)  # fmt: skip

    def fields(self) -> dict[str, str]:
        return dict(self._fields)

    async def aclose(self) -> None:
        """Stop reading (a refused upload's rest is never read)."""
        await self._stream.aclose()

    async def _events_of_body(self) -> AsyncGenerator[tuple[str, bytes]]:
        declared = self._request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self._max_body:
            raise self._too_large()
        size = 0
        try:
            async for chunk in self._request.stream():
                size += len(chunk)
                if size > self._max_body:
                    raise self._too_large()
                self._feed(chunk)
                for event in self._drain():
                    yield event
        except ClientDisconnect:
            raise InvalidRequest("the client closed the connection before its body arrived",
                                 code="client_disconnected") from None  # fmt: skip
        if not self._ended:
            raise InvalidRequest("the multipart body ended before its closing boundary", code="invalid_multipart")

    def _feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise InvalidRequest(f"the multipart body is malformed: {exc}", code="invalid_multipart") from None

    def _drain(self) -> list[tuple[str, bytes]]:
        events, self._events = self._events, []
        return events

    def _too_large(self) -> RequestTooLarge:
        return too_large(self._file_field, self._max_file)

    # --- parser callbacks (called synchronously inside write) ------------------------------------------------------

    def _part_begin(self) -> None:
        self._part = _Part()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_piece(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = bytes(self._header_name).decode("latin-1").strip().lower()
        self._part.headers[name] = bytes(self._header_value).decode("latin-1").strip()
        self._header_name, self._header_value = bytearray(), bytearray()

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._part.headers.get("content-disposition", ""))
        self._part.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        self._part.filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        if self._is_file():
            self._files_seen += 1
            if self._files_seen == 1:
                self.filename = self._part.filename
            self._events.append(("file", b""))

    def _is_file(self) -> bool:
        return self._part.name == self._file_field

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file():
            if self._files_seen == 1:
                self._events.append(("data", data[start:end]))
        elif self._part.filename is None:  # a text field; other files are dropped
            self._part.value += data[start:end]
            if len(self._part.value) > MAX_FIELD_BYTES:
                raise FormParserError(f"the form field {self._part.name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        part = self._part
        if self._is_file():
            self._events.append(("end_file", b""))
        elif part.filename is None and part.name:
            if len(self._fields) >= MAX_FIELDS:
                raise FormParserError(f"the form has more than {MAX_FIELDS} fields")
            self._fields[part.name] = part.value.decode("utf-8", "replace")

    def _end(self) -> None:
        self._ended = True


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidRequest("the body must be multipart/form-data (with a boundary) holding the image as its 'file' "
                             "field", code="invalid_content_type")  # fmt: skip
    if len(boundary) > 70:  # RFC 2046: at most 70 characters
        raise InvalidRequest("the multipart boundary is longer than 70 characters", code="invalid_multipart")
    return boundary
