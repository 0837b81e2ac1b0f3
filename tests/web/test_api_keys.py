"""API keys: a valid Bearer key has its own limit; any other Authorization header is 401 before the view runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db import get_store
from web import auth

FUTURE = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
KEY = "k3y-For-Programs_0123456789"


def job(n: int = 0) -> dict:
    return {"search-query": "red panda", "email": f"key{n}@example.com", "images": 1, "date": FUTURE,
            "time": "10:00"}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed_app(make_app):
    return make_app(WTF_CSRF_ENABLED=False, API_KEYS=["other-key", KEY], RATELIMIT_ENABLED=True,
                    RATE_LIMIT_SUBMIT="2/minute", RATE_LIMIT_API_KEY="4/minute")


@pytest.mark.parametrize("header, valid", [
    (f"Bearer {KEY}", True),
    (f"bearer {KEY}", True),
    ("Bearer other-key", True),
    (f"Bearer {KEY.lower()}", False),  # keys are compared exactly
    (f"Bearer {KEY}x", False),
    (f"Bearer {KEY[:-1]}", False),
    ("Bearer ", False),
    (f"Basic {KEY}", False),
    (KEY, False),
])
def test_api_key_client_accepts_only_a_configured_bearer_key(keyed_app, header, valid):
    with keyed_app.test_request_context("/api/jobs", method="POST", headers={"Authorization": header}):
        assert auth.api_key_client() is valid


def test_no_key_configured_means_no_key_is_valid(make_app):
    app = make_app()
    with app.test_request_context("/api/jobs", headers=bearer("")):
        assert auth.api_key_client() is False


@pytest.mark.parametrize("header", ["Bearer wrong", "Basic dXNlcjpwYXNz", "Bearer"])
def test_a_wrong_key_is_401_and_creates_nothing(keyed_app, header):
    client = keyed_app.test_client()
    response = client.post("/api/jobs", json=job(), headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert "API key is not valid" in body["error"]
    assert body["errors"][0]["field"] == "Authorization"
    with keyed_app.app_context():
        assert get_store().queued_jobs() == []  # the view never ran
    # Nor did the refusal use up the address's submissions.
    assert [client.post("/api/jobs", json=job(n)).status_code for n in range(3)] == [201, 201, 429]


def test_a_key_holder_has_its_own_limit_instead_of_the_address_one(keyed_app):
    client = keyed_app.test_client()
    with_key = [client.post("/api/jobs", json=job(n), headers=bearer(KEY)).status_code for n in range(5)]
    assert with_key == [201] * 4 + [429]
    # The same address without the key still has its own two.
    assert [client.post("/api/jobs", json=job(n)).status_code for n in range(10, 13)] == [201, 201, 429]


def test_each_key_is_counted_apart(keyed_app):
    client = keyed_app.test_client()
    assert [client.post("/api/jobs", json=job(n), headers=bearer(KEY)).status_code for n in range(4)] == [201] * 4
    assert client.post("/api/jobs", json=job(9), headers=bearer("other-key")).status_code == 201
