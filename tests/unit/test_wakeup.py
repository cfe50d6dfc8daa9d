"""Wake-ups between processes (reelgate.wakeup): a byte to every listener, stale sockets forgotten, never raising."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from reelgate.wakeup import CALLBACK_DUE, TASK_DUE, WakeListener, WakeSender


async def _woken(event: asyncio.Event) -> bool:
    try:
        await asyncio.wait_for(event.wait(), 5)
    except TimeoutError:
        return False
    return True


async def test_every_listener_is_woken_for_its_topic(tmp_path: Path) -> None:
    tasks = [asyncio.Event(), asyncio.Event()]
    callbacks = asyncio.Event()
    listeners = [WakeListener(tmp_path, {TASK_DUE: e.set, CALLBACK_DUE: callbacks.set}) for e in tasks]
    for listener in listeners:
        listener.start()
    sender = WakeSender(tmp_path)
    try:
        sender.notify(TASK_DUE)
        assert all([await _woken(e) for e in tasks])
        assert not callbacks.is_set()
        sender.notify(CALLBACK_DUE)
        assert await _woken(callbacks)
    finally:
        sender.close()
        for listener in listeners:
            listener.close()
    assert list(tmp_path.iterdir()) == []  # each listener removed its socket


async def test_a_burst_of_wakeups_is_one_call(tmp_path: Path) -> None:
    calls = []
    listener = WakeListener(tmp_path, {TASK_DUE: lambda: calls.append(1)})
    listener.start()
    sender = WakeSender(tmp_path)
    try:
        for _ in range(50):
            sender.notify(TASK_DUE)
        await asyncio.sleep(0.2)
    finally:
        sender.close()
        listener.close()
    assert 1 <= len(calls) < 50


def test_a_socket_left_by_a_killed_process_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / "123-dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(stale))
    sock.close()  # bound then closed without unlinking: what SIGKILL leaves
    sender = WakeSender(tmp_path)
    sender.notify(TASK_DUE)
    sender.close()
    assert not stale.exists()


def test_no_directory_means_no_wakeups_and_no_errors(tmp_path: Path) -> None:
    sender = WakeSender(tmp_path / "missing")
    sender.notify(TASK_DUE)
    sender.close()


async def test_a_listener_that_cannot_bind_leaves_polling_alone(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    listener = WakeListener(blocked, {TASK_DUE: lambda: None})
    listener.start()  # logs a warning; the worker still polls the database
    listener.close()
