"""Base64 media at submit: the body checked in a media pool process (a 400 beats a failed task), nothing stored.

``check_submission`` runs in a pool process (media/pool.py) on the raw request body: it parses the JSON, stops
early when the parent will refuse anyway (unknown model, a group that may not use it, too few credits), validates
``model_params``, decodes and inspects every Base64 item and compares the refer images with the frontal one. It
returns the decoded bytes; the service stores them only once every check passed, for the task it creates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from reelgate.bodies import body_hash, json_object
from reelgate.catalog import ModelSpec
from reelgate.errors import InvalidRequest, MediaError
from reelgate.media.fetch import decode_inline
from reelgate.media.images import ImageInfo, inspect_image, is_near_duplicate
from reelgate.media.video import inspect_video
from reelgate.params import CustomElementParams, ParamProblem, is_url, media_items

ASSET_REF = "asset:"
HEAD_FIELDS = ("model", "callback_url")
CLIP = 4096  # longer head values are cut to CLIP + 1 characters: still refused as too long, never shipped whole
_PART = re.compile(r"\.?([a-z_]+)|\[(\d+)\]")


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


@dataclass(frozen=True)
class Upload:
    """One checked Base64 item, decoded."""

    field: str
    kind: Literal["image", "video"]
    data: bytes
    ext: str


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
    params: dict[str, Any] | None = None  # model_params, each Base64 item replaced by "" until it is stored
    uploads: tuple[Upload, ...] = ()
    refusal: Refusal | None = None


def param_error(exc: ParamProblem) -> InvalidRequest:
    details = [{"param": p, "message": m} for p, m in exc.problems]
    return InvalidRequest(exc.problems[0][1], param=exc.problems[0][0], details=details if len(details) > 1 else None)


def parse_params(spec: ModelSpec, raw: Any) -> CustomElementParams:
    if raw is None:
        raise InvalidRequest("model_params is required", param="model_params", code="missing_parameter")
    try:
        return spec.parse(raw)
    except ParamProblem as exc:
        raise param_error(exc) from None


def has_inline_media(params: CustomElementParams) -> bool:
    return not all(is_url(source) for _, source, _ in media_items(params))


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
        params = parse_params(spec, body.get("model_params"))
        dump, uploads = _check_media(params, gate)
    except InvalidRequest as exc:
        return CheckedBody(head, digest, refusal=Refusal.of(exc))
    except MediaError as exc:
        return CheckedBody(head, digest, refusal=Refusal(exc.message, "invalid_media", exc.param))
    return CheckedBody(head, digest, dump, uploads)


def _clip(value: Any) -> Any:
    """A head value small enough to send back, refused by the API process exactly when the original would be."""
    if isinstance(value, str):
        return value if len(value) <= CLIP else value[: CLIP + 1]
    if isinstance(value, dict | list) and len(orjson.dumps(value)) > CLIP:
        return type(value)()
    return value


def _check_media(params: CustomElementParams, gate: SubmitGate) -> tuple[dict[str, Any], tuple[Upload, ...]]:
    dump = params.model_dump(exclude_none=True)
    frontal: ImageInfo | None = None
    refers: list[tuple[str, ImageInfo]] = []
    uploads: list[Upload] = []
    for field, source, kind in media_items(params):
        if is_url(source):
            continue
        limit = gate.image_max_bytes if kind == "image" else gate.video_max_bytes
        data = decode_inline(source, field=field, max_bytes=limit)
        if kind == "image":
            info = inspect_image(data, field=field, max_bytes=limit)
            if field.endswith("frontal_image"):
                frontal = info
            else:
                refers.append((field, info))
            ext = info.ext
        else:
            ext = inspect_video(data, field=field, max_bytes=limit).ext
        assign(dump, field, "")
        uploads.append(Upload(field, kind, data, ext))
    problem = duplicate_problem(frontal, refers)
    if problem is not None:
        raise problem
    return dump, tuple(uploads)


def assign(tree: dict[str, Any], field: str, value: str) -> None:
    """Set ``tree`` at a dotted path such as ``model_params.element_image_list.refer_images[0].image_url``."""
    parts: list[str | int] = [m.group(1) or int(m.group(2)) for m in _PART.finditer(field)][1:]
    node: Any = tree
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def duplicate_problem(frontal: ImageInfo | None, refers: list[tuple[str, ImageInfo]]) -> MediaError | None:
    """The first refer image that is a near-duplicate of the frontal image, as a MediaError."""
    if frontal is None:
        return None
    for field, info in refers:
        if is_near_duplicate(frontal, info):
            return MediaError(
                "image_processing_error",
                f"{field} is a near-duplicate of the frontal image; each refer image must show another view",
                param=field,
            )
    return None
