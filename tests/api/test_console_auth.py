"""The console's door, on both engines: sign-in (cookie flags, wrong passwords, rate limits, where it leads), CSRF
refusals on every kind of form, sign-out, and an operator disabled from the command line losing their session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.console_client import PASSWORD, Console, open_console
from reelgate.config import Settings
from reelgate.console_ops import Admins


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    async with open_console(settings) as opened:
        yield opened


async def audit_actions(c: Console) -> list[str]:
    return [e.action for e in await Admins(c.rt.store).audit_log()]


async def test_pages_send_strangers_to_the_sign_in_page_and_back(console: Console) -> None:
    r = await console.client.get("/console/tasks?status=failed")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/sign-in?next=%2Fconsole%2Ftasks%3Fstatus%3Dfailed"
    page = await console.client.get(r.headers["location"])
    assert page.status_code == 200 and 'value="/console/tasks?status=failed"' in page.text
    assert (
        page.headers["cache-control"] == "no-store"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )


async def test_sign_in_sets_a_strict_http_only_cookie_secure_behind_https(console: Console) -> None:
    r = await console.sign_in()
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("reelgate_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert (await console.client.get("/console/")).status_code == 200
    console.client.cookies.clear()  # a signed-in browser is sent past the sign-in page
    behind_tls = await console.sign_in(**{"X-Forwarded-Proto": "https"})
    assert all("Secure" in c for c in behind_tls.headers.get_list("set-cookie"))
    assert (await audit_actions(console))[:2] == ["sign_in", "sign_in"]


async def test_a_wrong_password_or_unknown_operator_is_refused_and_audited(console: Console) -> None:
    wrong = await console.sign_in(password="not the password")
    unknown = await console.sign_in(username="nobody")
    for r in (wrong, unknown):
        assert r.status_code == 401 and "Wrong username or password." in r.text
        assert not any(c.startswith("reelgate_console=") for c in r.headers.get_list("set-cookie"))
    entries = await Admins(console.rt.store).audit_log()
    # What was typed as an unknown username is not kept: it may be a password typed in the wrong field.
    assert [(e.actor, e.action, e.detail) for e in entries[:2]] == [
        ("(unknown)", "sign_in_failed", "unknown username"),
        ("ops", "sign_in_failed", "wrong password"),
    ]
    assert (await console.client.get("/console/")).status_code == 303


async def test_sign_in_attempts_are_limited_per_username(console: Console) -> None:
    answers = [(await console.sign_in(password=f"guess {i}")).status_code for i in range(7)]
    assert answers == [401] * 6 + [429]
    limited = await console.sign_in()  # even the right password waits: the username's budget is spent
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in limited.text


async def test_forms_without_the_right_token_are_refused_with_403(console: Console) -> None:
    bare = await console.client.post("/console/sign-in", data={"username": "ops", "password": PASSWORD})
    assert bare.status_code == 403  # the sign-in form's own token is missing
    await console.sign_in()
    account = await console.rt.store.accounts.ensure_account("acme", None, "whsec_x")
    for data in ({"account": "acme", "credits": "5"}, {"account": "acme", "credits": "5", "csrf": "forged"}):
        r = await console.client.post("/console/account/grant", data=data)
        assert r.status_code == 403 and "CSRF" in r.text
    balance, _ = await console.rt.store.accounts.credits(account, 0)
    assert balance.available == 0  # nothing was granted
    assert (await console.post("/console/account/grant", account="acme", credits="5")).status_code == 303


async def test_sign_out_ends_the_session_and_next_never_leads_off_site(console: Console) -> None:
    page = await console.client.get("/console/sign-in?next=//evil.example/x")
    assert 'name="next" value="/console/"' in page.text
    await console.sign_in()
    r = await console.post("/console/sign-out")
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
    assert (await console.client.get("/console/")).status_code == 303
    assert "sign_out" in await audit_actions(console)


async def test_disabling_an_operator_ends_their_sessions_at_once(console: Console) -> None:
    await console.sign_in()
    assert (await console.client.get("/console/")).status_code == 200
    await Admins(console.rt.store).disable("ops")
    assert (await console.client.get("/console/")).status_code == 303
    assert (await console.sign_in()).status_code == 401
    assert (await audit_actions(console))[:2] == ["sign_in_failed", "admin_disable"]
