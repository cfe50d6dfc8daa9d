"""The Provider protocol: one small pluggable part that turns a claimed task into an outcome.

Every provider runs tasks; the rest are optional capabilities a provider has or not, asked with ``isinstance``:
``DeletesElements`` (an element it registered also exists upstream), ``VerifiesHooks`` (its vendor calls back
on ``hook_path(...)``, taken as a hint to poll sooner) and ``ReportsChannels`` (it spreads tasks over vendor accounts
whose states, and resource-pack balances where the vendor tells them, operators see in the console). Vendors live
in providers/<vendor>/ and are built by name (providers/registry.py); nothing outside providers/ names one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

HOOKS_PREFIX = "/hooks"  # a vendor's callback: /hooks/<provider name>/<task id>/<signature>


@dataclass(frozen=True)
class Job:
    """What a provider is given: the task's id, owner, model, validated params and saved provider state."""

    task_id: str
    account_id: int
    model: str
    params: dict[str, Any]
    state: dict[str, Any]
    attempt: int


@dataclass(frozen=True)
class NewElement:
    """An element a completed task registers: its public id, and the vendor's handle to delete it (None: local)."""

    element_id: str
    upstream_id: str | None = None


@dataclass(frozen=True)
class Completed:
    """The task succeeded. ``result`` is the public ``result_data`` (or ``{"results": [URL, ...]}`` for a model that
    makes media); ``element``, when given, is registered with it. ``billed_seconds``: the seconds a per_second task
    actually made (None: the seconds it reserved), so the ledger captures only those and releases the rest."""

    result: dict[str, Any]
    element: NewElement | None = None
    billed_seconds: float | None = None  # per-second billing: the seconds to capture, when not the reserved ones


@dataclass(frozen=True)
class Failed:
    """The task failed with a vendor task error code (contract 3.2) and a message safe to show the caller."""

    code: str
    message: str


@dataclass(frozen=True)
class Pending:
    """Not done yet: run the task again after ``delay`` seconds with ``state`` saved (used for polling)."""

    delay: float
    state: dict[str, Any] = field(default_factory=dict)


Outcome = Completed | Failed | Pending


class JobContext(Protocol):
    """What a running provider may tell the service while it works. Every call is durable when it returns."""

    async def progress(self, percent: int) -> None:
        """Record real progress (monotonic; values below the current one are ignored)."""

    async def save_state(self, state: dict[str, Any], *, cancellable: bool | None = None) -> None:
        """Persist provider state (write-before-call); ``cancellable=False`` marks the point of no return."""

    async def still_mine(self) -> bool:
        """False once the task was cancelled, finished elsewhere, or the lease was lost: stop working."""


class Provider(Protocol):
    """Runs one step of a task. Raising is treated as a transient error (retried until the deadline)."""

    name: str

    async def run(self, job: Job, ctx: JobContext) -> Outcome: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class DeletesElements(Protocol):
    """A provider whose elements also exist upstream: deleting one here deletes it there first."""

    async def delete_element(self, upstream_id: str, state: dict[str, Any]) -> None:
        """Delete the element upstream (idempotent: "not found" counts as done)."""


@runtime_checkable
class VerifiesHooks(Protocol):
    """A provider whose vendor calls back on ``hook_path(name, task_id, signature)``; only it can tell a true one."""

    def verify_hook(self, task_id: str, signature: str) -> bool: ...


@dataclass(frozen=True)
class ChannelState:
    """One vendor account ("channel") as this process's provider sees it. ``slot_key`` names it among the upstream
    slots (every worker's places in flight); ``out_until`` (Unix seconds) and ``reason`` say why it is out of
    rotation, when it is."""

    provider: str
    name: str
    slot_key: str
    weight: int
    cap: int
    in_rotation: bool
    out_until: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class ResourcePack:
    """One prepaid pack of a vendor account: ``remaining`` of ``total`` units, its state, and when it ends (Unix
    seconds, None: not said)."""

    name: str
    kind: str
    total: float
    remaining: float
    status: str
    ends: float | None = None


@dataclass(frozen=True)
class ChannelBalance:
    """A channel's resource packs as its vendor last told them (``checked``, Unix seconds), or, when they could not
    be read, ``unavailable``: why not, in words safe to show an operator (never a credential)."""

    slot_key: str
    packs: tuple[ResourcePack, ...] = ()
    unavailable: str = ""
    checked: float = 0.0


@runtime_checkable
class ReportsChannels(Protocol):
    """A provider that spreads tasks over vendor accounts tells their states and balances (for operators)."""

    def channel_states(self) -> list[ChannelState]: ...

    async def channel_balance(self, name: str) -> ChannelBalance:
        """The resource packs of the channel ``name`` (a :class:`ChannelState` name). Answers within a few seconds
        whatever the vendor does (a slow or refused call is an ``unavailable`` balance, never an exception) and may
        answer what it read up to a minute ago, so a page can ask on every load."""
        ...


def hook_path(provider: str, task_id: str, signature: str) -> str:
    return f"{HOOKS_PREFIX}/{provider}/{task_id}/{signature}"
