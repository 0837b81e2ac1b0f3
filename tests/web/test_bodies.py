"""Bounded request bodies: the size limit applies (413 naming the body), deep JSON is a 400, never a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

FUTURE = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
JOB = {"search-query": "red panda", "email": "body@example.com", "images": 1, "date": FUTURE, "time": "10:00"}


def test_the_body_limit_is_in_effect_by_default(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024


def test_a_20_mb_json_body_is_413_naming_the_body(client):
    body = json.dumps({**JOB, "padding": "x" * (20 * 1024 * 1024)})
    response = client.post("/api/jobs", data=body, content_type="application/json")
    assert response.status_code == 413
    data = response.get_json()
    assert data["errors"] == [{"field": "body", "message": data["error"]}]
    assert "larger than the 64.0 KB" in data["error"]


def test_a_large_form_gets_a_413_page(client):
    response = client.post("/", data={**JOB, "search-query": "x" * (100 * 1024)})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "The request body is larger than the 64.0 KB" in response.get_data(as_text=True)


def test_a_body_just_under_the_limit_is_read(client):
    response = client.post("/api/jobs", json={**JOB, "padding": "x" * (60 * 1024)})
    assert response.status_code == 201


def test_the_limit_holds_over_real_http_without_a_content_length(app, live_server):
    server = live_server(app)

    def chunks():
        yield b'{"search-query": "'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"}'

    response = requests.post(server.url + "/api/jobs", data=chunks(), timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize("body", [
    "[" * 30_000 + "]" * 30_000,
    '{"search-query": ' + "[" * 30_000 + "]" * 30_000 + "}",
    "{" + '"a":{' * 10_000 + "}" * 10_001,
])
def test_json_nested_30000_deep_is_a_400_naming_the_body(client, body):
    response = client.post("/api/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [{"field": "body", "message": "the body is nested too deeply to be a job"}]


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"a string"', ""])
def test_a_body_that_is_not_an_object_is_a_400_naming_the_body(client, body):
    response = client.post("/api/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [{"field": "body", "message": "the body must be a JSON object"}]
