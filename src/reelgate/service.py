"""Use cases: submit, get, list, cancel, finish, elements. The only module that decides what a transaction holds."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from reelgate import netguard
from reelgate.assets import AssetStore
from reelgate.catalog import ModelSpec
from reelgate.config import Settings
from reelgate.domain import FAILED, TASK_ID_PREFIX, TaskRecord, is_task_id, new_task_id, new_webhook_id
from reelgate.errors import (
    ApiError,
    Conflict,
    InvalidRequest,
    MediaError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    UpstreamError,
)
from reelgate.media.inline import store_inline_media
from reelgate.params import ParamProblem, is_url, media_items
from reelgate.providers import Provider
from reelgate.store.accounts import KeyOwner
from reelgate.store.elements import ElementRecord
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish, Idempotency, NewTask

log = logging.getLogger("reelgate.service")
MAX_LIST_LIMIT = 100
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_KEEP = 48 * 3600.0


@dataclass(frozen=True)
class Submission:
    body: dict[str, Any]
    owner: KeyOwner
    idempotency_key: str | None = None


def _param_error(exc: ParamProblem) -> InvalidRequest:
    details = [{"param": p, "message": m} for p, m in exc.problems]
    return InvalidRequest(exc.problems[0][1], param=exc.problems[0][0], details=details if len(details) > 1 else None)


def _p75(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.75))]


class TaskService:
    """Everything the API and the workers may do to tasks, elements and credits."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        catalog: dict[str, ModelSpec],
        assets: AssetStore,
        providers: dict[str, Provider] | None = None,
    ) -> None:
        self.settings = settings
        self.providers = providers or {}
        self.store = store
        self.catalog = catalog
        self.assets = assets
        self._eta: dict[str, tuple[float, int]] = {}
        # Listeners told after a commit, in this process: they wake the worker and the dispatcher at once.
        self.on_terminal: list[Callable[[TaskRecord], None]] = []
        self.on_submit: list[Callable[[TaskRecord], None]] = []

    def provider_for(self, spec: ModelSpec) -> str:
        return self.settings.providers.get(spec.name, spec.default_provider)

    # --- submit -------------------------------------------------------------------------------------------------

    def _model(self, body: dict[str, Any]) -> ModelSpec:
        model = body.get("model")
        if model is None:
            raise InvalidRequest("model is required", param="model", code="missing_parameter")
        if not isinstance(model, str):
            raise InvalidRequest("model must be a string", param="model")
        spec = self.catalog.get(model)
        if spec is None:
            raise InvalidRequest(f"model {model[:64]!r} does not exist; see GET /v1/models", param="model",
                                 code="model_not_found")  # fmt: skip
        return spec

    def _callback_url(self, body: dict[str, Any]) -> str | None:
        url = body.get("callback_url")
        if url is None:
            return None
        if not isinstance(url, str):
            raise InvalidRequest("callback_url must be a string", param="callback_url")
        problem = netguard.url_problem(url, allow_private=self.settings.allow_private_networks, schemes=("https",))
        if problem:
            raise InvalidRequest(f"callback_url {problem}", param="callback_url", code="invalid_callback_url")
        return url

    async def estimated_time(self, model: str) -> int:
        cached = self._eta.get(model)
        now = time.monotonic()
        if cached is not None and now - cached[0] < 30:
            return cached[1]
        durations = await self.store.tasks.recent_durations(model)
        # Until the deployment has seen a few tasks, fall back to the configured default.
        eta = max(1, round(_p75(durations))) if len(durations) >= 5 else self.settings.default_estimated_time
        self._eta[model] = (now, eta)
        return eta

    async def _prepare_params(self, spec: ModelSpec, raw: Any) -> dict[str, Any]:
        if raw is None:
            raise InvalidRequest("model_params is required", param="model_params", code="missing_parameter")
        try:
            params = spec.parse(raw)
        except ParamProblem as exc:
            raise _param_error(exc) from None
        items = media_items(params)
        if all(is_url(source) for _, source, _ in items):
            return params.model_dump(exclude_none=True)  # nothing to decode: skip the thread hop
        try:
            return await asyncio.to_thread(store_inline_media, params, items, self.assets, self.settings)
        except MediaError as exc:
            raise InvalidRequest(exc.message, param=exc.param, code="invalid_media") from None
        except OSError as exc:
            # Nothing is reserved yet, so a full or failing disk costs the caller nothing but a retry.
            log.error("cannot store uploaded media", extra={"error": str(exc)})
            raise ServiceUnavailable("uploaded media cannot be stored right now; retry later",
                                     code="storage_unavailable", headers={"Retry-After": "30"}) from None  # fmt: skip

    async def submit(self, sub: Submission) -> TaskRecord:
        spec = self._model(sub.body)
        callback_url = self._callback_url(sub.body)
        price = spec.price_for(sub.owner.user_group)
        if price is None:
            raise PermissionDenied(f"user group {sub.owner.user_group!r} may not use model {spec.name}",
                                   param="model", code="model_not_allowed")  # fmt: skip
        idem = self._idempotency(sub)
        params = await self._prepare_params(spec, sub.body.get("model_params"))
        now = time.time()
        task = NewTask(
            id=new_task_id(now), account_id=sub.owner.account_id, api_key_id=sub.owner.key_id, model=spec.name,
            provider=self.provider_for(spec), created=int(now), now=now, deadline=now + self.settings.task_deadline,
            params=params, callback_url=callback_url, price=price, user_group=sub.owner.user_group,
            billing_rule=spec.billing_rule, estimated_time=await self.estimated_time(spec.name),
            max_in_flight=sub.owner.max_in_flight or self.settings.max_in_flight,
        )  # fmt: skip
        record, first_hash = await self.store.tasks.create(task, idem)
        if first_hash is not None and idem is not None and first_hash != idem.body_hash:
            raise Conflict("this Idempotency-Key was already used with a different request body",
                           code="idempotency_key_reused")  # fmt: skip
        if first_hash is None:
            for listener in self.on_submit:
                listener(record)
        return record

    def _idempotency(self, sub: Submission) -> Idempotency | None:
        key = sub.idempotency_key
        if key is None:
            return None
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidRequest(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters",
                                 param="Idempotency-Key")  # fmt: skip
        digest = hashlib.sha256(orjson.dumps(sub.body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return Idempotency(sub.owner.key_id, key, digest)

    # --- read ---------------------------------------------------------------------------------------------------

    async def get(self, task_id: str, owner: KeyOwner) -> TaskRecord:
        if not task_id.startswith(TASK_ID_PREFIX):
            raise InvalidRequest("task_id must look like task-unified-<seconds>-<8 characters>", param="task_id",
                                 code="invalid_task_id")  # fmt: skip
        # A well-prefixed id that cannot exist is just unknown (404, per the contract): skip the read.
        record = await self.store.tasks.get(task_id, owner.account_id) if is_task_id(task_id) else None
        if record is None:
            raise NotFound(f"task {task_id} not found", param="task_id", code="task_not_found")
        return record

    async def list_tasks(self, owner: KeyOwner, *, status: str, model: str, after: str, limit: int) -> list[TaskRecord]:
        limit = min(max(limit, 1), MAX_LIST_LIMIT)
        return await self.store.tasks.list_for_account(owner.account_id, status=status, model=model, after=after,
                                                       limit=limit)  # fmt: skip

    async def callbacks(self, task_id: str, owner: KeyOwner) -> dict[str, Any]:
        task = await self.get(task_id, owner)
        delivery, attempts = await self.store.deliveries.for_task(task.id)
        return {
            "object": "list",
            "task_id": task.id,
            "callback_url": task.callback_url,
            "delivery": None if delivery is None else dict(delivery),
            "data": [dict(a) for a in attempts],
        }

    # --- cancel and finish --------------------------------------------------------------------------------------

    async def cancel(self, task_id: str, owner: KeyOwner) -> TaskRecord:
        task = await self.get(task_id, owner)
        finish = Finish(task_id=task.id, status=FAILED, now=time.time(), guard="cancel", account_id=owner.account_id,
                        error_code="request_cancelled", error_message="The task was cancelled by the client.",
                        webhook_id=new_webhook_id())  # fmt: skip
        done = await self.finish(finish)
        if done is None:
            raise Conflict(f"task {task.id} can no longer be cancelled (status {task.status})", param="task_id",
                           code="task_not_cancellable")  # fmt: skip
        return done

    async def finish(self, finish: Finish) -> TaskRecord | None:
        done = await self.store.tasks.finish(finish)
        if done is not None:
            log.info("task finished", extra={"task_id": done.id, "status": done.status, "code": done.error_code})
            for listener in self.on_terminal:
                listener(done)
        return done

    async def purge_idempotency(self) -> int:
        """Forget Idempotency-Keys after two days (the contract promises at least 24 h)."""
        return await self.store.purge_idempotency(time.time() - IDEMPOTENCY_KEEP)

    async def fail_overdue(self) -> int:
        count = 0
        for task_id in await self.store.tasks.overdue(time.time()):
            done = await self.finish(
                Finish(task_id=task_id, status=FAILED, now=time.time(), guard="expired", webhook_id=new_webhook_id(),
                       error_code="generation_timeout",
                       error_message=f"The task did not finish within {self.settings.task_deadline:g} s.")
            )  # fmt: skip
            count += done is not None
        return count

    # --- elements -----------------------------------------------------------------------------------------------

    async def element(self, element_id: str, owner: KeyOwner) -> ElementRecord:
        found = await self.store.elements.get(element_id, owner.account_id) if element_id.isdigit() else None
        if found is None:
            raise NotFound(f"element {element_id[:40]} not found", param="element_id", code="element_not_found")
        return found

    async def list_elements(self, owner: KeyOwner, *, after: str, limit: int) -> list[ElementRecord]:
        limit = min(max(limit, 1), MAX_LIST_LIMIT)
        return await self.store.elements.list_for_account(owner.account_id, after=after, limit=limit)

    async def delete_element(self, element_id: str, owner: KeyOwner) -> ElementRecord:
        """Delete upstream first (idempotent there), then hide it here: a failed upstream call changes nothing."""
        found = await self.element(element_id, owner)
        provider = self.providers.get(found.provider)
        if found.upstream_id and provider is not None:
            try:
                await provider.delete_element(found.upstream_id, {})
            except Exception as exc:
                log.warning("upstream element delete failed", extra={"element_id": found.id, "error": str(exc)})
                raise UpstreamError("the upstream provider could not delete the element right now; retry later",
                                    code="upstream_delete_failed") from None  # fmt: skip
        gone = await self.store.elements.mark_deleted(found.id, owner.account_id, time.time())
        if gone is None:
            raise NotFound(f"element {element_id[:40]} not found", param="element_id", code="element_not_found")
        if found.upstream_id:
            await self.store.elements.mark_upstream_deleted(found.id)
        return gone


__all__ = ["ApiError", "Submission", "TaskService"]
