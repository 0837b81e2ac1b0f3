"""The caps hold through the database: two app processes on one SQLite file (and one Cassandra keyspace) share them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.fixtures.apps import fresh_keyspace

pytestmark = pytest.mark.slow

AT = datetime.now(UTC) + timedelta(days=2)
PER_ADDRESS = "this email address already has 2 jobs waiting or running; please submit again when one of them has ended"
FULL = "the queue is full (3 jobs are waiting); please try again later"


def _post(process, email: str) -> requests.Response:
    return requests.post(process.url + "/api/jobs", timeout=30, json={
        "search-query": "red panda", "email": email, "images": 2,
        "date": AT.strftime("%Y-%m-%d"), "time": AT.strftime("%H:%M")})


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)])
def test_the_caps_answer_with_their_messages_through_two_processes(processes, app_env, request, backend):
    if backend == "cassandra":
        app_env["DATABASE_URL"] = fresh_keyspace(request.getfixturevalue("cassandra_url"))
    caps = {"MAX_ACTIVE_JOBS_PER_EMAIL": "2", "MAX_QUEUED_JOBS": "3", "SCHEDULER": "off", "EMAIL_CONFIRMATION": "on"}
    a, b = processes.flask(**caps), processes.flask(**caps)
    assert _post(a, "same@example.com").status_code == 201
    assert _post(b, "Same@example.com").status_code == 201
    for process in (a, b):
        response = _post(process, "same@example.com")
        assert response.status_code == 400
        assert response.json()["errors"] == [{"field": "email", "message": PER_ADDRESS}]
    assert _post(a, "other@example.com").status_code == 201  # three waiting in all now
    for process in (b, a):
        response = _post(process, "third@example.com")
        assert response.status_code == 400
        assert response.json()["errors"] == [{"field": None, "message": FULL}]
    # The form says the same, next to the field or above the form.
    page = requests.get(b.url + "/", timeout=10)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = requests.post(b.url + "/", timeout=30, cookies=page.cookies, data={
        "csrf_token": token, "search-query": "red panda", "email": "third@example.com", "images": "2",
        "date": AT.strftime("%Y-%m-%d"), "time": AT.strftime("%H:%M")})
    assert form.status_code == 400 and FULL in form.text
