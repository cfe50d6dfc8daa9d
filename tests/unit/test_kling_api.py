"""Pure tests of the Kling client: JWT claims (decoded with PyJWT), error classes, status and failure mapping."""

from __future__ import annotations

import json
import re

import httpx
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelgate.providers.kling.api import KlingCredentials, KlingError, parse_task, unwrap
from reelgate.providers.kling.codes import map_failure, map_status

AK = "ak-test-0123456789abcdef0123456789"
SK = "sk-test-0123456789abcdef0123456789abcdef"  # 32+ bytes, as Kling's secret keys are
NOW = 1_760_000_000.0


def _response(status: int, body: object) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, request=httpx.Request("GET", "http://127.0.0.1/x"))


def _task(element_id: object) -> dict[str, object]:
    return {
        "task_id": "t1",
        "task_status": "succeed",
        "task_info": {"external_task_id": "task-unified-1-abcdefgh"},
        "task_result": {"elements": [{"element_id": element_id}]},
    }


# -- JWT ---------------------------------------------------------------------------------------------


def test_jwt_has_kling_claims_and_verifies_with_the_secret() -> None:
    token = KlingCredentials(access_key=AK, secret_key=SK).bearer(NOW)
    claims = jwt.decode(token, SK, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    assert claims == {"iss": AK, "exp": int(NOW) + 1800, "nbf": int(NOW) - 5}
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_jwt_signed_with_another_secret_does_not_verify() -> None:
    token = KlingCredentials(access_key=AK, secret_key=SK).bearer(NOW)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SK + "x", algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_short_secret_still_makes_a_valid_jwt_without_warning_in_our_code() -> None:
    token = KlingCredentials(access_key="AK", secret_key="SK").bearer(NOW)
    assert (
        jwt.decode(token, "SK", algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})["iss"] == "AK"
    )


def test_jwt_is_reused_until_five_minutes_before_expiry() -> None:
    creds = KlingCredentials(access_key=AK, secret_key=SK)
    first = creds.bearer(NOW)
    assert creds.bearer(NOW + 1499) == first
    renewed = creds.bearer(NOW + 1500)
    assert renewed != first
    assert jwt.decode(renewed, options={"verify_signature": False})["exp"] == int(NOW) + 1500 + 1800


def test_jwt_is_remade_when_the_clock_goes_back() -> None:
    creds = KlingCredentials(access_key=AK, secret_key=SK)
    creds.bearer(NOW)
    again = creds.bearer(NOW - 60)
    assert jwt.decode(again, options={"verify_signature": False})["nbf"] == int(NOW) - 65


def test_plain_api_key_is_sent_as_is() -> None:
    assert KlingCredentials(api_key="plain-key").bearer(NOW) == "plain-key"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"access_key": AK}, {"secret_key": SK}, {"access_key": AK, "secret_key": SK, "api_key": "k"}],
)
def test_credentials_need_exactly_one_complete_method(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        KlingCredentials(**kwargs)


def test_secrets_never_appear_in_reprs() -> None:
    pair = KlingCredentials(access_key=AK, secret_key=SK)
    plain = KlingCredentials(api_key="plain-key-secret")
    pair.bearer(NOW)
    assert SK not in repr(pair) and AK not in repr(pair)
    assert "plain-key-secret" not in repr(plain) and "plain-key-secret" not in str(plain)


# -- error classification ----------------------------------------------------------------------------

FLAGS = ("is_auth", "is_account", "is_retryable", "is_not_found", "is_policy", "is_bad_params", "is_ambiguous")
CLASSES: list[tuple[int, int, set[str]]] = [
    *[(c, 401, {"is_auth"}) for c in range(1000, 1005)],
    *[(c, 429, {"is_account"}) for c in (1100, 1101, 1102)],
    (1103, 403, {"is_account"}),
    (1200, 400, {"is_bad_params"}),
    (1201, 400, {"is_bad_params"}),
    (1202, 404, set()),
    (1203, 404, {"is_not_found"}),
    (1300, 400, {"is_policy"}),
    (1301, 400, {"is_policy"}),
    (1302, 429, {"is_retryable"}),
    (1303, 429, {"is_retryable"}),
    (1304, 429, set()),
    (5000, 500, {"is_retryable"}),
    (5001, 503, {"is_retryable"}),
    (5002, 504, {"is_retryable"}),
]


@pytest.mark.parametrize(("code", "http_status", "expected"), CLASSES)
def test_each_kling_code_has_exactly_its_classes(code: int, http_status: int, expected: set[str]) -> None:
    error = KlingError("m", code=code, http_status=http_status)
    assert {flag for flag in FLAGS if getattr(error, flag)} == expected


@pytest.mark.parametrize(("http_status", "retryable"), [(429, True), (500, True), (503, True), (400, False)])
def test_unknown_codes_fall_back_on_the_http_status(http_status: int, retryable: bool) -> None:
    assert KlingError("m", code=9999, http_status=http_status).is_retryable is retryable
    assert KlingError("m", http_status=http_status).is_retryable is retryable


def test_connect_failure_is_retryable_and_a_drop_is_ambiguous() -> None:
    unsent = KlingError("refused", request_sent=False)
    dropped = KlingError("dropped", ambiguous=True)
    assert unsent.is_retryable and not unsent.is_ambiguous
    assert dropped.is_ambiguous and not dropped.is_retryable and dropped.request_sent


# -- envelope and task parsing -----------------------------------------------------------------------


def test_envelope_error_carries_code_status_message_and_request_id() -> None:
    response = _response(429, {"code": 1302, "message": "too fast", "request_id": "r-1"})
    with pytest.raises(KlingError) as caught:
        unwrap(response)
    assert (caught.value.code, caught.value.http_status, caught.value.message) == (1302, 429, "too fast")
    assert caught.value.request_id == "r-1" and caught.value.is_retryable


def test_non_json_gateway_error_is_retryable_and_unreadable_success_is_ambiguous() -> None:
    with pytest.raises(KlingError) as gateway:
        unwrap(_response(502, b"<html>Bad Gateway</html>"))
    with pytest.raises(KlingError) as garbled:
        unwrap(_response(200, b"{not json"))
    assert gateway.value.is_retryable and not gateway.value.is_ambiguous
    assert garbled.value.is_ambiguous


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_element_ids_survive_parsing_exactly(element_id: int) -> None:
    response = _response(200, {"code": 0, "message": "SUCCEED", "data": _task(element_id)})
    assert parse_task(unwrap(response), response).element_ids == [element_id]


def test_big_element_id_from_raw_json_stays_exact() -> None:
    raw = b'{"code":0,"data":{"task_id":"t","task_result":{"elements":[{"element_id":9223372036854775801}]}}}'
    response = _response(200, raw)
    assert parse_task(unwrap(response), response).element_ids == [2**63 - 7]


def test_float_element_id_is_refused_and_decimal_string_accepted() -> None:
    floaty = _response(200, b'{"code":0,"data":{"task_id":"t","task_result":{"elements":[{"element_id":8.6e20}]}}}')
    with pytest.raises(KlingError) as caught:
        parse_task(unwrap(floaty), floaty)
    assert caught.value.is_ambiguous
    stringy = _response(200, {"code": 0, "data": _task("9223372036854775801")})
    assert parse_task(unwrap(stringy), stringy).element_ids == [9223372036854775801]


def test_task_fields_are_read_from_data() -> None:
    response = _response(200, {"code": 0, "data": {**_task(5), "task_status": "failed", "task_status_msg": "bad"}})
    task = parse_task(unwrap(response), response)
    assert (task.task_id, task.status, task.status_msg, task.state) == ("t1", "failed", "bad", "failed")
    assert task.external_task_id == "task-unified-1-abcdefgh"


# -- mapping -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("submitted", "pending"),
        ("processing", "processing"),
        ("succeed", "completed"),
        ("failed", "failed"),
        (" SUCCEED ", "completed"),
        ("cancelled", "unknown"),
        ("", "unknown"),
    ],
)
def test_map_status(status: str, ours: str) -> None:
    assert map_status(status) == ours


ACCOUNT_MESSAGE = "The upstream provider account is unavailable."


@pytest.mark.parametrize(
    ("status_msg", "code", "ours"),
    [
        ("Content security policy triggered", None, "content_policy_violation"),
        ("", 1300, "content_policy_violation"),
        ("", 1301, "content_policy_violation"),
        ("frontal image resolution too small", None, "image_processing_error"),
        ("refer video download failed", None, "image_processing_error"),
        ("element_name too long", 1201, "invalid_parameters"),
        ("", 1302, "resource_exhausted"),
        ("", 5001, "service_unavailable"),
        ("", 5002, "generation_timeout"),
        ("", 1203, "resource_not_found"),
        ("something odd happened", None, "unknown_error"),
        ("interface glitch", None, "unknown_error"),
        ("no faces detected", None, "image_processing_error"),
        ("Unauthorized resource", None, "service_error"),
    ],
)
def test_map_failure_codes(status_msg: str, code: int | None, ours: str) -> None:
    assert map_failure(status_msg, code)[0] == ours


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1004, 1100, 1101, 1102, 1103, 1304])
def test_account_and_auth_errors_become_service_error_without_detail(code: int) -> None:
    assert map_failure("Account 12345 in arrears, balance -3.20 CNY, request_id abc", code) == (
        "service_error",
        ACCOUNT_MESSAGE,
    )


def test_account_wording_without_a_code_is_still_hidden() -> None:
    assert map_failure("account balance is insufficient", None) == ("service_error", ACCOUNT_MESSAGE)


def test_media_detail_is_kept_but_scrubbed() -> None:
    code, message = map_failure(
        "image https://cdn.example/x.png?sig=abc too small; request_id: 8f3a2c1e-77aa-4c1b", None
    )
    assert code == "image_processing_error"
    assert message.startswith("The provider could not process the reference media: image <url> too small")
    assert "request" not in message and "8f3a" not in message and "cdn.example" not in message


@given(
    st.sampled_from(["", "image ", "video download ", "invalid "]),
    st.text(max_size=300),
    st.one_of(st.none(), st.sampled_from([1201, 1301, 1101, 5000]), st.integers(min_value=0, max_value=9999)),
)
def test_user_messages_never_carry_long_numbers_or_urls(prefix: str, text: str, code: int | None) -> None:
    ours, message = map_failure(prefix + text, code)
    assert re.fullmatch(r"[a-z_]+", ours)
    assert not re.search(r"\d{6,}", message) and "://" not in message
    assert len(message) <= 240
