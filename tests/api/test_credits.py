"""``GET /v1/credits`` in EvoLink's shape (contract §9, get-credits.json), on both engines: the calling key's view
(``token``) and the account's (``user``), credits held for a running task not remaining, another tenant unseen."""

from __future__ import annotations

from typing import Any

from harness import Api, auth, b64_jpeg, image_body


async def _credits(api: Api, key: str) -> dict[str, Any]:
    response = await api.client.get("/v1/credits", headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["success"], body["message"]) == (True, "")
    return body["data"]


async def test_the_key_and_the_account_each_see_what_they_spent(api: Api) -> None:
    first = await api.key("acme", credits=5)
    second = await api.key("acme", credits=0)  # the same account: 5 credits in all
    stranger = await api.key("globex", credits=7)
    done = await api.wait(first, (await api.submit(first, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"])
    assert done["status"] == "completed"

    assert await _credits(api, first) == {
        "token": {"remaining_credits": 4, "unlimited_credits": False, "used_credits": 1},
        "user": {"remaining_credits": 4, "used_credits": 1},
    }
    assert (await _credits(api, second))["token"] == {"remaining_credits": 4, "unlimited_credits": False,
                                                      "used_credits": 0}  # fmt: skip
    assert await _credits(api, stranger) == {
        "token": {"remaining_credits": 7, "unlimited_credits": False, "used_credits": 0},
        "user": {"remaining_credits": 7, "used_credits": 0},
    }


async def test_credits_held_for_a_running_task_are_not_remaining(api: Api) -> None:
    key = await api.key("acme", credits=3)
    api.rt.worker.concurrency = 0  # type: ignore[union-attr]  # the task stays pending, its credit reserved
    assert (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).status_code == 200
    assert (await _credits(api, key))["user"] == {"remaining_credits": 2, "used_credits": 0}


async def test_credits_need_a_key(api: Api) -> None:
    response = await api.client.get("/v1/credits")
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
