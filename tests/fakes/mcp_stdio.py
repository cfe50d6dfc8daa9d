"""A minimal MCP client over a child process's stdio (JSON-RPC 2.0, one JSON message per line), for tests that drive
a real MCP server such as EvoLink's published media client: initialize, tools/list, tools/call. No MCP library."""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

PROTOCOL_VERSION = "2025-06-18"


class McpError(Exception):
    """A JSON-RPC error answer, the child's exit, or no answer in time."""


@dataclass(frozen=True)
class ToolResult:
    """A tools/call answer: its text content joined, and whether the tool reported an error."""

    text: str
    is_error: bool
    raw: dict[str, Any]


class McpStdio:
    """``with McpStdio(["node", "server.js"], env=..., stderr=path) as mcp: mcp.initialize(); mcp.call_tool(...)``."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], stderr: Path, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.stderr_path = stderr
        self._err = stderr.open("ab")
        self._ids = itertools.count(1)
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.popen = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._err)  # fmt: skip
        assert self.popen.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.popen.stdout,), daemon=True)
        self._reader.start()

    def __enter__(self) -> McpStdio:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _read(self, stdout: IO[bytes]) -> None:
        # One message per line; anything else on stdout is the server breaking the transport, kept for the error.
        for line in stdout:
            try:
                message = json.loads(line)
            except ValueError:
                message = {"unparsed": line.decode(errors="replace")}
            self._inbox.put(message if isinstance(message, dict) else {"unparsed": repr(message)})
        self._inbox.put(None)  # the child closed stdout

    def _send(self, message: dict[str, Any]) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        self.popen.stdin.flush()

    def _stderr_tail(self) -> str:
        self._err.flush()
        return self.stderr_path.read_text(errors="replace")[-2000:]

    def _next(self) -> dict[str, Any]:
        try:
            message = self._inbox.get(timeout=self.timeout)
        except queue.Empty:
            raise McpError(
                f"no message from the MCP server within {self.timeout} s; stderr:\n{self._stderr_tail()}"
            ) from None
        if message is None:
            self._inbox.put(None)
            raise McpError(
                f"the MCP server closed its stdout (exit {self.popen.poll()}); stderr:\n{self._stderr_tail()}"
            )
        if "unparsed" in message:
            raise McpError(f"the MCP server wrote a line that is not JSON-RPC: {message['unparsed']!r}")
        return message

    def _answer_server_request(self, message: dict[str, Any]) -> None:
        # The server may ping or ask for things this client does not offer (roots, sampling): answer, never hang.
        if message["method"] == "ping":
            self._send({"id": message["id"], "result": {}})
        else:
            self._send({"id": message["id"], "error": {"code": -32601, "message": "method not found"}})

    def request(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send one request and return its result; server notifications and requests met meanwhile are handled."""
        ident = next(self._ids)
        self._send({"id": ident, "method": method, **({"params": dict(params)} if params is not None else {})})
        while True:
            message = self._next()
            if "method" in message and "id" in message:
                self._answer_server_request(message)
            elif message.get("id") == ident:
                if "error" in message:
                    raise McpError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            # anything else is a notification (logging, progress): not needed by these tests

    def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        self._send({"method": method, **({"params": dict(params)} if params is not None else {})})

    def initialize(self, client_name: str = "reelgate-tests") -> dict[str, Any]:
        """The handshake: initialize, then notifications/initialized. Returns the server's initialize result."""
        result = self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                             "clientInfo": {"name": client_name, "version": "1"}})  # fmt: skip
        self.notify("notifications/initialized")
        return result

    def list_tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.request("tools/list", {"cursor": cursor} if cursor else {})
            tools += page["tools"]
            cursor = page.get("nextCursor")
            if not cursor:
                return tools

    def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        raw = self.request("tools/call", {"name": name, "arguments": dict(arguments)})
        text = "\n".join(item.get("text", "") for item in raw.get("content", []) if item.get("type") == "text")
        return ToolResult(text=text, is_error=bool(raw.get("isError")), raw=raw)

    def close(self) -> None:
        """Close stdin (the stdio transport's shutdown), then wait; kill the child if it does not exit."""
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # the child may already be gone
                self.popen.stdin.close()
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        self._err.close()
