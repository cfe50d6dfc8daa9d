"""Use cases: submit, get, list, cancel, finish, elements. The only module that decides what a transaction holds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from reelgate import netguard
from reelgate.assets import AssetStore
from reelgate.bodies import body_hash, json_object
from reelgate.catalog import ElementInfo, ModelSpec
from reelgate.catalog.submit import (
    CheckedBody,
    SubmitGate,
    check_submission,
    has_inline_media,
    param_error,
    parse_params,
)
from reelgate.config import Settings
from reelgate.domain import (
    FAILED,
    TASK_ID_PREFIX,
    TaskRecord,
    delivery_view,
    format_credits,
    is_task_id,
    new_task_id,
    new_webhook_id,
)
from reelgate.errors import (
    ApiError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    UpstreamError,
)
from reelgate.logs import task_fields
from reelgate.media.inline import ASSET_REF, assign
from reelgate.media.pool import MediaPool
from reelgate.params import ParamProblem
from reelgate.providers import DeletesElements, Provider
from reelgate.store.accounts import KeyOwner
from reelgate.store.elements import ElementRecord
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish, Idempotency, NewTask
from reelgate.store.uploads import Precheck
from reelgate.webhook_service import public_delivery

log = logging.getLogger("reelgate.service")
MAX_LIST_LIMIT = 100
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_KEEP = 48 * 3600.0
LOOP_BODY_BYTES = 64 * 1024  # larger bodies (Base64 media) are parsed in the media pool, never on the event loop
ASSET_GRACE = 3600.0  # files registered this recently may belong to a submit or a task run still under way


@dataclass(frozen=True)
class Submission:
    """A submit request. ``body`` is None for a large body, which only the media pool parses (from ``raw``)."""

    body: dict[str, Any] | None
    owner: KeyOwner
    idempotency_key: str | None = None
    raw: bytes | None = None
    precheck: Precheck | None = None  # made before a large body was read (TaskService.precheck_upload)

    @classmethod
    def received(cls, raw: bytes, owner: KeyOwner, key: str | None, precheck: Precheck | None = None) -> Submission:
        return cls(json_object(raw) if len(raw) <= LOOP_BODY_BYTES else None, owner, key, raw, precheck)


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
        media: MediaPool | None = None,
    ) -> None:
        self.settings = settings
        self.providers = providers or {}
        self.store = store
        self.catalog = catalog
        self.assets = assets
        self.media = media or MediaPool.from_settings(settings)  # no process starts before the first Base64 submit
        self._eta: dict[str, tuple[float, int]] = {}
        # Listeners told after a commit, in this process: they wake the worker and the dispatcher at once.
        self.on_terminal: list[Callable[[TaskRecord], None]] = []
        self.on_submit: list[Callable[[TaskRecord], None]] = []
        self.on_callback_queued: list[Callable[[str], None]] = []  # a resend queued a task's callback (its id)

    def provider_for(self, spec: ModelSpec) -> str:
        return self.settings.providers.get(spec.name, spec.default_provider)

    def serves(self, spec: ModelSpec) -> bool:
        """Whether this deployment has the provider the model runs on (an upstream one needs a channel)."""
        return self.provider_for(spec) in self.providers

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
        if not self.serves(spec):
            provider = self.provider_for(spec)
            raise InvalidRequest(f"model {spec.name} needs an upstream {provider.capitalize()} channel, and this "
                                 f"deployment has none configured; ask the operator to add one", param="model",
                                 code="model_not_available")  # fmt: skip
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

    def _price(self, spec: ModelSpec, owner: KeyOwner) -> int:
        price = spec.price_for(owner.user_group)
        if price is None:
            raise PermissionDenied(f"user group {owner.user_group!r} may not use model {spec.name}", param="model",
                                   code="model_not_allowed")  # fmt: skip
        return price

    async def submit(self, sub: Submission) -> TaskRecord:
        if sub.body is None:
            return await self._submit_inline(sub, None)
        spec = self._model(sub.body)
        callback_url = self._callback_url(sub.body)
        price = self._price(spec, sub.owner)
        idem = self._idempotency(sub, sub.body)
        params = parse_params(spec, sub.body)
        if has_inline_media(spec, params):
            return await self._submit_inline(sub, price)
        stored, price = await self._terms(spec, sub.owner, params, params.model_dump(exclude_none=True))
        task = await self._new_task(spec, sub.owner, stored, callback_url, price)
        return await self._create(task, idem)

    async def _terms(self, spec: ModelSpec, owner: KeyOwner, params: BaseModel,
                     stored: dict[str, Any]) -> tuple[dict[str, Any], int]:  # fmt: skip
        """The params a task stores and what it reserves: the element rules against the caller's own element rows
        (which pin the task to their upstream channel), then the model's price for these params and group."""
        try:
            if spec.elements is not None and (ids := spec.elements.ids(params)):
                rows = await self.store.elements.get_many(ids, owner.account_id)
                found = {r.id: ElementInfo(r.id, r.provider, r.upstream_id, r.data) for r in rows}
                stored.update(spec.elements.check(params, found))
            charge = spec.charge(params, owner.user_group)
        except ParamProblem as exc:
            raise param_error(exc) from None
        if charge is None:  # _price refused such a group already; kept for a caller that did not ask it
            raise PermissionDenied(f"user group {owner.user_group!r} may not use model {spec.name}", param="model",
                                   code="model_not_allowed")  # fmt: skip
        if charge.billing is not None:
            stored["billing"] = charge.billing
        return stored, charge.millicredits

    async def _new_task(self, spec: ModelSpec, owner: KeyOwner, params: dict[str, Any], callback_url: str | None,
                        price: int) -> NewTask:  # fmt: skip
        now = time.time()
        return NewTask(
            id=new_task_id(now), account_id=owner.account_id, api_key_id=owner.key_id, model=spec.name,
            provider=self.provider_for(spec), created=int(now), now=now, deadline=now + self.settings.task_deadline,
            params=params, callback_url=callback_url, price=price, user_group=owner.user_group,
            billing_rule=spec.billing_rule, estimated_time=await self.estimated_time(spec.name),
            max_in_flight=owner.max_in_flight or self.settings.max_in_flight,
        )  # fmt: skip

    async def _create(self, task: NewTask, idem: Idempotency | None, uploads: list[str] | None = None) -> TaskRecord:
        """Create the task; ``uploads`` (stored for it) are removed unless it was made, by this request."""
        try:
            record, first_hash = await self.store.tasks.create(task, idem)
        except BaseException:
            await self._remove(uploads or [])
            raise
        if first_hash is not None:
            await self._remove(uploads or [])  # an earlier request with this key made the task
        if first_hash is not None and idem is not None and first_hash != idem.body_hash:
            raise Conflict("this Idempotency-Key was already used with a different request body",
                           code="idempotency_key_reused")  # fmt: skip
        if first_hash is None:
            log.info("task submitted", extra=task_fields(record))
            for listener in self.on_submit:
                listener(record)
        return record

    def _idempotency_key(self, key: str | None) -> str | None:
        if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY):
            raise InvalidRequest(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters",
                                 param="Idempotency-Key")  # fmt: skip
        return key

    def _idempotency(self, sub: Submission, body: dict[str, Any]) -> Idempotency | None:
        key = self._idempotency_key(sub.idempotency_key)
        return None if key is None else Idempotency(sub.owner.key_id, key, body_hash(body))

    # --- submit with Base64 media: every refusal first, the work in the media pool, files only for a made task ---

    async def _submit_inline(self, sub: Submission, price: int | None) -> TaskRecord:
        """Refuse what can be refused from the account (a used Idempotency-Key, credits, in-flight cap) before the
        body is decoded; decode and check it in the media pool; store the media only for the task it makes."""
        owner, key = sub.owner, self._idempotency_key(sub.idempotency_key)
        pre = sub.precheck or await self.store.uploads.precheck(owner.account_id, owner.key_id, key)
        if pre.used_hash is not None and sub.body is not None:
            return await self._replay(pre, body_hash(sub.body))
        if pre.used_hash is None:
            self._check_funds(pre, price if price is not None else self._cheapest(owner), owner)
        gate = SubmitGate(self.catalog, owner.user_group, pre.available, self.settings.image_max_bytes,
                          self.settings.video_max_bytes, want_hash=key is not None,
                          hash_only=pre.used_hash is not None)  # fmt: skip
        raw = sub.raw if sub.raw is not None else orjson.dumps(sub.body)
        checked: CheckedBody = await self.media.run(owner.account_id, check_submission, gate, payload=raw)
        if checked.head is None and checked.refusal is not None:
            raise checked.refusal.error()  # not a JSON object
        if pre.used_hash is not None:
            return await self._replay(pre, checked.body_hash)
        spec = self._model(checked.head or {})
        callback_url = self._callback_url(checked.head or {})
        price = self._price(spec, owner)
        self._check_funds(pre, price, owner)
        if checked.refusal is not None:
            raise checked.refusal.error()
        if checked.params is None or checked.head is None:
            raise ApiError("the media check stopped without a reason")  # the checks above mirror the pool's
        idem = None if key is None else Idempotency(owner.key_id, key, checked.body_hash)
        stored = checked.params
        if spec.inline is None:  # a large body of a URL-only model: its params hold no placeholder, parse them again
            body = stored if spec.reads_body else {"model_params": stored}
            stored, price = await self._terms(spec, owner, parse_params(spec, body), dict(stored))
        task = await self._new_task(spec, owner, stored, callback_url, price)
        names = await self._store_uploads(task, checked)
        return await self._create(task, idem, names)

    async def precheck_upload(self, owner: KeyOwner, key: str | None, declared: str | None) -> Precheck | None:
        """Before a body too large to parse on the event loop is read: refuse what the account alone can refuse
        (no credits for any model, the in-flight cap), so such a body is never even read. None for other bodies."""
        if declared is None or not (declared.isascii() and declared.isdigit()) or int(declared) <= LOOP_BODY_BYTES:
            return None
        pre = await self.store.uploads.precheck(owner.account_id, owner.key_id, self._idempotency_key(key))
        if pre.used_hash is None:
            self._check_funds(pre, self._cheapest(owner), owner)
        return pre

    async def _replay(self, pre: Precheck, digest: str) -> TaskRecord:
        if digest != pre.used_hash:
            raise Conflict("this Idempotency-Key was already used with a different request body",
                           code="idempotency_key_reused")  # fmt: skip
        record = await self.store.tasks.get(pre.used_task or "")
        if record is None:
            raise ApiError("the task of this Idempotency-Key is missing")
        return record

    def _cheapest(self, owner: KeyOwner) -> int:
        prices = [p for spec in self.catalog.values() if (p := spec.price_for(owner.user_group)) is not None]
        return min(prices, default=0)

    def _check_funds(self, pre: Precheck, price: int, owner: KeyOwner) -> None:
        pre.check(price, owner.max_in_flight or self.settings.max_in_flight)

    async def _store_uploads(self, task: NewTask, checked: CheckedBody) -> list[str]:
        items = [(u.data, u.ext) for u in checked.uploads]
        try:
            names = await self.assets.save(items, account_id=task.account_id, task_id=task.id)
        except OSError as exc:
            # Nothing is reserved yet, so a full or failing disk costs the caller nothing but a retry.
            log.error("cannot store uploaded media", extra={"error": str(exc)})
            raise ServiceUnavailable("uploaded media cannot be stored right now; retry later",
                                     code="storage_unavailable", headers={"Retry-After": "30"}) from None  # fmt: skip
        for upload, name in zip(checked.uploads, names, strict=True):
            assign(task.params, upload.field, ASSET_REF + name)
        return names

    async def _remove(self, names: list[str], *, forget: bool = True) -> None:
        try:
            await self.assets.delete(names, forget=forget)
        except Exception as exc:  # the hourly sweep removes what is left
            log.warning("cannot remove stored media", extra={"error": str(exc), "files": len(names)})

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

    async def list_tasks(self, owner: KeyOwner, *, status: str, model: str, after: str, limit: int,
                         error_code: str = "") -> list[TaskRecord]:  # fmt: skip
        limit = min(max(limit, 1), MAX_LIST_LIMIT)
        return await self.store.tasks.list_for_account(owner.account_id, status=status, model=model, after=after,
                                                       limit=limit, error_code=error_code)  # fmt: skip

    async def credits(self, owner: KeyOwner) -> dict[str, Any]:
        """EvoLink's credits answer (contract §9): ``token`` is the calling key's view, ``user`` the account's. A key
        has no quota of its own, so it may spend what the account has; credits held for running tasks are not
        remaining."""
        balance, key_used = await self.store.accounts.credits(owner.account_id, owner.key_id)
        remaining = format_credits(balance.available)
        token = {"remaining_credits": remaining, "unlimited_credits": False, "used_credits": format_credits(key_used)}
        user = {"remaining_credits": remaining, "used_credits": format_credits(balance.captured)}
        return {"success": True, "message": "", "data": {"token": token, "user": user}}

    async def callbacks(self, task_id: str, owner: KeyOwner) -> dict[str, Any]:
        task = await self.get(task_id, owner)
        delivery, attempts = await self.store.deliveries.for_task(task.id)
        return {
            "object": "list",
            "task_id": task.id,
            "callback_url": task.callback_url,
            "delivery": None if delivery is None else public_delivery(delivery),
            "data": [delivery_view(dict(a)) for a in attempts],
        }

    # --- cancel and finish --------------------------------------------------------------------------------------

    async def cancel(self, task_id: str, owner: KeyOwner) -> TaskRecord:
        task = await self.get(task_id, owner)
        finish = Finish(task_id=task.id, status=FAILED, now=time.time(), guard="cancel", account_id=owner.account_id,
                        error_code="request_cancelled", error_message="The task was cancelled by the client.",
                        webhook_id=new_webhook_id())  # fmt: skip
        done = await self.finish(finish)
        if done is not None:
            return done
        now = await self.get(task_id, owner)  # read again: it may have ended between the first read and the cancel
        if now.status == FAILED and now.error_code == "request_cancelled":
            return now  # cancelling a cancelled task is idempotent, as a retried request must be: the task, 200
        raise Conflict(f"task {now.id} can no longer be cancelled (status {now.status})", param="task_id",
                       code="task_not_cancellable")  # fmt: skip

    async def finish(self, finish: Finish) -> TaskRecord | None:
        done = await self.store.tasks.finish(finish)
        if done is not None:
            log.info("task cancelled" if finish.guard == "cancel" else "task finished", extra=task_fields(done))
            for listener in self.on_terminal:
                listener(done)
            if done.status == FAILED:
                # Its media serve nothing now. Rows stay for the sweep: a worker that lost the task to a cancel
                # may still be writing a copy, which the sweep removes after ASSET_GRACE.
                await self._remove(await self.store.uploads.of_task(done.id), forget=False)
        return done

    async def sweep_assets(self, batch: int = 500) -> int:
        """Remove stored media nothing needs (refused or failed submits, deleted elements, expired results) that no
        live task names, once registered over ASSET_GRACE ago (assets.AssetStore.sweep)."""
        return await self.assets.sweep(grace=ASSET_GRACE, batch=batch)

    async def aclose(self) -> None:
        await self.media.aclose()
        await self.assets.aclose()  # the storage backend's connections, if it has any

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
        found = (
            await self.store.elements.get(element_id, owner.account_id)
            if element_id.isascii() and element_id.isdigit()
            else None
        )
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
        if found.upstream_id and isinstance(provider, DeletesElements):
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
        # Each stored file belongs to the one task that stored it, so no other element uses these: their URLs
        # answer 404 from now on, except any a live task of the account names (removed by the sweep once it ends).
        try:
            await self.assets.release_task(found.task_id, owner.account_id)
        except Exception as exc:  # the hourly sweep removes what is left
            log.warning("cannot remove stored media", extra={"error": str(exc), "element_id": found.id})
        return gone


__all__ = ["ApiError", "Submission", "TaskService"]
