"""The OpenAPI document and what serves it: every operation summarised, described and tagged; every schema
described with examples that are valid and that the server's own parsers accept (the vendor page's example first);
the submit body an object; GET /v1/models listing every field's rules; 405's Allow; /docs and its assets."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from harness import Api, auth, make_settings, open_api
from reelgate.api.docs_page import SWAGGER_UI_VERSION
from reelgate.api.openapi import TAGS, openapi_document, request_name
from reelgate.catalog import default_catalog

CATALOG = default_catalog()
DOCUMENT = openapi_document(CATALOG)
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "kling-custom-element-api.txt"
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator of component ``name``, its ``#/components/schemas/...`` references resolved in the document."""
    registry: Registry[Any] = Registry().with_resource("urn:doc", Resource.from_contents(DOCUMENT, DRAFT202012))
    schema = {"$ref": f"urn:doc#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in DOCUMENT["paths"].items():
        for method, op in methods.items():
            yield path, method, op


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"


def test_every_operation_has_a_summary_a_description_and_a_declared_tag() -> None:
    declared = {t["name"] for t in TAGS}
    for path, method, op in _operations():
        where = f"{method.upper()} {path}"
        assert op.get("operationId") and op.get("summary") and op.get("description"), where
        assert op.get("tags") and set(op["tags"]) <= declared, where
        for param in op.get("parameters", []):
            assert param.get("description"), f"{where}: {param['name']}"


def _undescribed(node: dict[str, Any], path: str) -> Iterator[str]:
    for name, prop in node.get("properties", {}).items():
        if not prop.get("description"):
            yield path + name
        yield from _undescribed(prop, f"{path}{name}.")
    if isinstance(node.get("items"), dict):
        yield from _undescribed(node["items"], f"{path}[].")
    for branch in node.get("anyOf", []):
        yield from _undescribed(branch, path)


def test_every_schema_and_field_is_described_with_examples() -> None:
    problems = []
    for name, schema in SCHEMAS.items():
        if not schema.get("description"):
            problems.append(f"{name}: no description")
        if not schema.get("examples"):
            problems.append(f"{name}: no examples")
        problems += [f"{name}.{field}: no description" for field in _undescribed(schema, "")]
    assert problems == []


def test_every_example_is_valid_by_its_own_schema() -> None:
    for name, schema in SCHEMAS.items():
        if name == "StreamUploadRequest":
            continue  # its `file` is bytes (multipart): the example stands for them
        validator = _validator(name)
        for example in schema["examples"]:
            errors = [e.message for e in validator.iter_errors(example)]
            assert errors == [], f"{name}: {errors}"


def test_every_request_example_is_accepted_by_its_models_parser() -> None:
    examples = DOCUMENT["paths"]["/v1/videos/generations"]["post"]["requestBody"]["content"]["application/json"]
    bodies = [e["value"] for e in examples["examples"].values()]
    assert {b["model"] for b in bodies} == set(CATALOG)
    for body in bodies:
        spec = CATALOG[body["model"]]
        spec.parse(body if spec.reads_body else body["model_params"])  # raises ParamProblem naming any problem
        assert not _validator("SubmitRequest").is_valid({**body, "model": "no-such-model"})


def test_the_element_example_is_the_vendor_pages_own() -> None:
    examples = DOCUMENT["paths"]["/v1/videos/generations"]["post"]["requestBody"]["content"]["application/json"]
    first = next(iter(examples["examples"].values()))["value"]
    if SEED.exists():  # shared/ lies beside the checkout (and CI's clone)
        vendor = json.loads(re.search(r"--data '\n(.*?)\n'", SEED.read_text(), re.S).group(1))  # type: ignore[union-attr]
        assert first == vendor
    assert first["model_params"]["element_name"] == "My Character"
    assert SCHEMAS["CustomElementRequest"]["examples"][0] == first


@pytest.mark.parametrize("body", [0, "x", [], None, {"model": "kling-custom-element"},
                                  {"model": "kling-custom-element", "model_params": 0}])  # fmt: skip
def test_the_submit_body_must_be_an_object_of_one_model(body: Any) -> None:
    assert not _validator("SubmitRequest").is_valid(body)


def test_the_element_rules_are_in_its_schema() -> None:
    valid = _validator("CustomElementRequest").is_valid
    seed = SCHEMAS["CustomElementRequest"]["examples"][0]

    def changed(**params: Any) -> dict[str, Any]:
        return {**seed, "model_params": {**seed["model_params"], **params}}

    assert valid(seed)
    assert not valid(changed(element_name="x" * 21))
    assert not valid(changed(element_voice_id="829824295735410756"))  # video_refer only
    assert not valid(changed(element_video_list={"video_url": "https://example.com/v.mp4"}))
    assert not valid(changed(tag_list=[{"tag_id": "o_109"}]))
    assert not valid(changed(tag_list=[{"tag_id": "o_101"}, {"tag_id": "o_101", "note": "ignored"}]))
    assert valid(changed(tag_list=[{"tag_id": "o_101"}, {"tag_id": "o_102"}]))
    video = {**seed, "model_params": SCHEMAS["CustomElementParams"]["examples"][1]}
    flat = {**video, "model_params": {**video["model_params"],
                                      "element_video_list": {"video_url": "https://example.com/v.mp4"}}}  # fmt: skip
    assert valid(video) and valid(flat)


@pytest.fixture
async def sqlite_api(tmp_path: Path, db_url: str) -> AsyncIterator[Api]:
    async with open_api(make_settings(tmp_path, db_url)) as opened:
        yield opened


@SQLITE_ONLY
async def test_models_list_each_models_request_schema_and_field_rules(sqlite_api: Api) -> None:
    key = await sqlite_api.key()
    models = {m["id"]: m for m in (await sqlite_api.client.get("/v1/models", headers=auth(key))).json()["data"]}
    assert set(models) == set(CATALOG)
    for name, model in models.items():
        schema = model["request_schema"]
        jsonschema.Draft202012Validator.check_schema(schema)
        for example in SCHEMAS[request_name(CATALOG[name])]["examples"]:
            jsonschema.validate(example, schema)  # the same schema as the document's, made self-contained
        assert all({"field", "type", "required", "description"} <= set(f) for f in model["fields"]), name
    fields = {f["field"]: f for f in models["kling-custom-element"]["fields"]}
    assert fields["model_params.element_name"] | {"pattern": ""} == {
        "field": "model_params.element_name", "type": "string", "required": True, "min_length": 1, "max_length": 20,
        "pattern": "", "description": fields["model_params.element_name"]["description"]}  # fmt: skip
    assert fields["model_params.reference_type"]["enum"] == ["image_refer", "video_refer"]
    assert fields["model_params.element_image_list.refer_images"] | {"description": ""} == {
        "field": "model_params.element_image_list.refer_images", "type": "array", "required": True,
        "min_items": 1, "max_items": 3, "description": ""}  # fmt: skip
    assert fields["model_params.tag_list[].tag_id"]["enum"][0] == "o_101"
    video = {f["field"]: f for f in models["kling-o3-reference-to-video"]["fields"]}
    assert (video["duration"]["minimum"], video["duration"]["maximum"]) == (3, 10)
    assert video["prompt"]["required"] is True and video["model_params.element_list"]["max_items"] == 7
    assert video["quality"]["enum"] == ["720p", "1080p"]


@SQLITE_ONLY
async def test_405_allows_every_method_of_the_path(sqlite_api: Api) -> None:
    key = await sqlite_api.key()
    for path, allowed in (("/v1/elements/123", "DELETE, GET, HEAD"), ("/v1/tasks", "GET, HEAD"),
                          ("/api/v1/files/list", "GET, HEAD"), ("/v1/videos/generations", "POST")):  # fmt: skip
        answer = await sqlite_api.client.request("OPTIONS", path, headers=auth(key))
        assert (answer.status_code, answer.headers["allow"]) == (405, allowed), path
        assert answer.json()["error"]["code"] == "method_not_allowed"


@SQLITE_ONLY
async def test_docs_page_and_its_packaged_assets(sqlite_api: Api) -> None:
    page = await sqlite_api.client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self' 'sha256-" in csp and "http" not in csp
    assert f"docs/assets/{SWAGGER_UI_VERSION}/swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # every URL is this server's, relative
    base = f"/docs/assets/{SWAGGER_UI_VERSION}"
    plain = await sqlite_api.client.get(f"{base}/swagger-ui-bundle.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/javascript")
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert b"SwaggerUIBundle" in plain.content and "content-encoding" not in plain.headers
    zipped = await sqlite_api.client.get(f"{base}/swagger-ui.css", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert b".swagger-ui" in zipped.content  # httpx decoded it
    for missing in ("/docs/assets/0.0.1/swagger-ui.css", f"{base}/index.html", f"{base}/..%2Fswagger-ui.css"):
        answer = await sqlite_api.client.get(missing)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "route_not_found", missing
