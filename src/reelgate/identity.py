"""Names that identify this process as a lease owner: host, pid and a random suffix (unique across restarts)."""

from __future__ import annotations

import os
import secrets
import socket


def process_name(role: str) -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
