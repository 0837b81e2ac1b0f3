"""Rate limits on submissions: per client address (the real one behind a trusted proxy), 429 with Retry-After."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

FUTURE = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")


def job(n: int = 0) -> dict:
    """A valid submission; each for its own address, so no cap per address comes into play."""
    return {"search-query": "red panda", "email": f"limit{n}@example.com", "images": 1, "date": FUTURE,
            "time": "10:00", "timezone": "UTC"}


@pytest.fixture
def limited_app(make_app):
    return make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATE_LIMIT_SUBMIT="5/minute;20/hour")


def test_30_rapid_api_submissions_give_5_jobs_and_429s_with_retry_after(limited_app):
    client = limited_app.test_client()
    responses = [client.post("/api/jobs", json=job(n)) for n in range(30)]
    assert [r.status_code for r in responses].count(201) == 5
    refused = [r for r in responses if r.status_code != 201]
    assert {r.status_code for r in refused} == {429}
    for response in refused:
        seconds = int(response.headers["Retry-After"])
        assert 0 < seconds <= 61
        assert f"Please try again in {seconds} seconds" in response.get_json()["error"]


def test_the_form_gets_a_page_that_says_when_to_retry(limited_app):
    client = limited_app.test_client()
    statuses = [client.post("/", data=job(n)).status_code for n in range(7)]
    assert statuses == [303] * 5 + [429] * 2  # each created job answers 303 to its page
    response = client.post("/", data=job(7))
    assert response.mimetype == "text/html"
    assert re.search(r"Please try again in \d+ seconds", response.get_data(as_text=True))
    assert int(response.headers["Retry-After"]) > 0


def test_a_form_sent_back_with_errors_does_not_count(limited_app):
    client = limited_app.test_client()
    for _ in range(10):
        assert client.post("/", data={**job(), "images": "many"}).status_code == 400
        assert client.post("/api/jobs", json={**job(), "email": "nobody"}).status_code == 400
    assert [client.post("/", data=job(n)).status_code for n in range(6)] == [303] * 5 + [429]


def test_the_form_and_the_api_share_one_count(limited_app):
    client = limited_app.test_client()
    assert [client.post("/", data=job(n)).status_code for n in range(3)] == [303] * 3
    assert [client.post("/api/jobs", json=job(n)).status_code for n in range(3, 6)] == [201, 201, 429]


def test_each_client_address_has_its_own_count(limited_app):
    client = limited_app.test_client()
    for address in ("198.51.100.1", "198.51.100.2"):
        statuses = [client.post("/api/jobs", json=job(n), environ_base={"REMOTE_ADDR": address}).status_code
                    for n in range(6)]
        assert statuses == [201] * 5 + [429]


def test_a_refusal_is_logged_without_the_client_address(limited_app, caplog):
    client = limited_app.test_client()
    with caplog.at_level(logging.INFO, logger="flask-limiter"):
        statuses = [client.post("/api/jobs", json=job(n), environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code
                    for n in range(6)]
    assert statuses == [201] * 5 + [429]
    lines = [r.getMessage() for r in caplog.records if r.name == "flask-limiter"]
    assert any("exceeded at endpoint" in line and "[client]" in line for line in lines), lines
    assert not any("198.51.100.7" in r.getMessage() for r in caplog.records)


def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(make_app):
    def statuses(app) -> list[int]:
        client = app.test_client()
        return [client.post("/api/jobs", json=job(n), headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
                for n in range(6)]

    settings = {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True, "RATE_LIMIT_SUBMIT": "5/minute"}
    # Without a trusted proxy the header is the client's own word: changing it does not buy more submissions.
    assert statuses(make_app(**settings)) == [201] * 5 + [429]
    # Behind one proxy (Heroku's router) the address it saw is the client's: six clients, six jobs.
    assert statuses(make_app(**settings, TRUSTED_PROXIES=1)) == [201] * 6


def test_the_real_client_behind_the_proxy_is_limited(make_app):
    app = make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATE_LIMIT_SUBMIT="5/minute", TRUSTED_PROXIES=1)
    client = app.test_client()
    # The client puts a spoofed address first; the router appends the one it saw, and only that counts.
    statuses = [client.post("/api/jobs", json=job(n), headers={"X-Forwarded-For": f"10.0.0.{n}, 203.0.113.9"})
                .status_code for n in range(6)]
    assert statuses == [201] * 5 + [429]


def test_api_links_come_from_public_url_never_from_the_host_header(make_app):
    app = make_app(WTF_CSRF_ENABLED=False, PUBLIC_URL="https://aid.example.com", SECRET_KEY="s" * 32)
    response = app.test_client().post("/api/jobs", json=job(), headers={"Host": "evil.example"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["status_url"] == f"https://aid.example.com/api/jobs/{body['id']}"
    assert body["page_url"] == f"https://aid.example.com/jobs/{body['id']}"
    assert response.headers["Location"] == body["status_url"]


@pytest.mark.slow
def test_two_processes_sharing_one_redis_accept_5_of_30(processes, redis_url):
    """The count lives in the real Redis server, so a second process (dyno) does not double the limit."""
    limits = {"RATE_LIMIT_SUBMIT": "5/minute;20/hour", "RATE_LIMIT_STORAGE_URL": redis_url, "SCHEDULER": "off"}
    webs = [processes.flask(**limits), processes.flask(**limits)]
    responses = [requests.post(webs[n % 2].url + "/api/jobs", json=job(n), timeout=10) for n in range(30)]
    assert [r.status_code for r in responses].count(201) == 5
    assert {r.status_code for r in responses} == {201, 429}
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses if r.status_code == 429)
    # Both processes refused some: each one read the count the other had written.
    assert {n % 2 for n, r in enumerate(responses) if r.status_code == 429} == {0, 1}
