"""Base64 media at submit: the body checked in a media pool process (a 400 beats a failed task), nothing stored.

``check_submission`` runs in a pool process (media/pool.py) on the raw request body: it parses the JSON, stops
early when the parent will refuse anyway (unknown model, a group that may not use it, too few credits), validates
the params (``model_params``, or the whole body for a model that reads it) and hands them to the model's own
inline-media check (``ModelSpec.inline``), which decodes and inspects every Base64 item. It returns the decoded
bytes; the service stores them only once every check passed, for the task it creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from reelgate.bodies import body_hash, json_object
from reelgate.catalog.spec import ModelSpec
from reelgate.errors import InvalidRequest, MediaError
from reelgate.media.inline import InlineLimits, Upload
from reelgate.params import ParamProblem, problem_code

HEAD_FIELDS = ("model", "callback_url")
CLIP = 4096  # longer head values are cut to CLIP + 1 characters: still refused as too long, never shipped whole


@dataclass(frozen=True)
class SubmitGate:
    """What a pool process needs to check a body without asking the API process anything."""

    catalog: dict[str, ModelSpec]
    group: str
    available: int  # the account's credits at the pre-check (millicredits)
    image_max_bytes: int
    video_max_bytes: int
    want_hash: bool = False  # an Idempotency-Key came with the body
    hash_only: bool = False  # ... and was used before: the hash decides, nothing else is checked

    @property
    def limits(self) -> InlineLimits:
        return InlineLimits(self.image_max_bytes, self.video_max_bytes)


@dataclass(frozen=True)
class Refusal:
    """A 400 found in a pool process, carried back as data (exceptions lose their keywords when pickled)."""

    message: str
    code: str
    param: str | None = None
    details: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, exc: InvalidRequest) -> Refusal:
        return cls(exc.message, exc.code, exc.param, exc.details)

    def error(self) -> InvalidRequest:
        return InvalidRequest(self.message, code=self.code, param=self.param, details=self.details)


@dataclass(frozen=True)
class CheckedBody:
    """A submit body as checked in a pool process. ``params`` is None when the API process will refuse it anyway
    (model, group or credits) or when ``refusal`` says why it is invalid."""

    head: dict[str, Any] | None  # model and callback_url, for the API process's checks; None: not a JSON object
    body_hash: str = ""
    params: dict[str, Any] | None = None  # the parsed params, each Base64 item replaced by "" until it is stored
    uploads: tuple[Upload, ...] = ()
    refusal: Refusal | None = None


def param_error(exc: ParamProblem) -> InvalidRequest:
    details = [{"param": p[0], "message": p[1], "code": problem_code(p)} for p in exc.problems]
    return InvalidRequest(exc.problems[0][1], param=exc.problems[0][0], code=exc.code,
                          details=details if len(details) > 1 else None)  # fmt: skip


def parse_params(spec: ModelSpec, body: dict[str, Any]) -> BaseModel:
    """The request's params as the model parses them: the whole body (``spec.reads_body``) or ``model_params``."""
    raw = body if spec.reads_body else body.get("model_params")
    if raw is None:
        raise InvalidRequest("model_params is required", param="model_params", code="missing_parameter")
    try:
        return spec.parse(raw)
    except ParamProblem as exc:
        raise param_error(exc) from None


def has_inline_media(spec: ModelSpec, params: BaseModel) -> bool:
    return spec.inline is not None and spec.inline.present(params)


def check_submission(raw: bytes, gate: SubmitGate) -> CheckedBody:
    """In a pool process: everything a submit body can be refused for, in the order the API answers it."""
    try:
        body = json_object(raw)
    except InvalidRequest as exc:
        return CheckedBody(None, refusal=Refusal.of(exc))
    head = {k: _clip(body[k]) for k in HEAD_FIELDS if k in body}
    digest = body_hash(body) if gate.want_hash else ""
    model = body.get("model")
    spec = gate.catalog.get(model) if isinstance(model, str) else None
    price = spec.price_for(gate.group) if spec is not None else None
    if gate.hash_only or spec is None or price is None or price > gate.available:
        return CheckedBody(head, digest)  # the API process answers these from its own checks
    try:
        params = parse_params(spec, body)
        if spec.inline is None:
            return CheckedBody(head, digest, params.model_dump(exclude_none=True))
        dump, uploads = spec.inline.check(params, gate.limits)
    except InvalidRequest as exc:
        return CheckedBody(head, digest, refusal=Refusal.of(exc))
    except MediaError as exc:
        return CheckedBody(head, digest, refusal=Refusal(exc.message, exc.code, exc.param))
    return CheckedBody(head, digest, dump, uploads)


def _clip(value: Any) -> Any:
    """A head value small enough to send back, refused by the API process exactly when the original would be."""
    if isinstance(value, str):
        return value if len(value) <= CLIP else value[: CLIP + 1]
    if isinstance(value, dict | list) and len(orjson.dumps(value)) > CLIP:
        return type(value)()
    return value
