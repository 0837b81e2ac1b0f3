"""The crawl mode of the JSON API and of the form: "mode": "crawl" with a start URL; every refusal names its field.

The address guard is on (ALLOW_PRIVATE_URLS off) and only 127.0.0.1:8999 is trusted, as an operator would set
GUARD_TRUSTED_HOSTS; nothing here opens a connection (a literal address needs no lookup; "localhost" is in
/etc/hosts)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from db import get_store

TRUSTED = "http://127.0.0.1:8999/gallery/"
LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture
def crawl_app(make_app):
    return make_app(ALLOW_PRIVATE_URLS=False, GUARD_TRUSTED_HOSTS=["127.0.0.1:8999"], MAX_CRAWL_IMAGES=50,
                    MAX_CRAWL_PAGES=100, MAX_ACTIVE_JOBS_PER_EMAIL=2)


def _crawl(**fields) -> dict:
    return {"mode": "crawl", "start-url": TRUSTED, "email": "site@example.com", "images": 20,
            "date": f"{LATER:%Y-%m-%d}", "time": "10:00", **fields}


def test_a_crawl_job_is_accepted_with_its_limits_and_its_site_as_the_query(crawl_app):
    client = crawl_app.test_client()
    response = client.post("/api/jobs", json=_crawl(**{"max-pages": 30, "depth": 3, "render": "browser"}))
    assert response.status_code == 201, response.get_json()
    job_id = response.get_json()["id"]
    status = client.get(f"/api/jobs/{job_id}").get_json()
    assert status["options"] == {"mode": "crawl", "start_url": TRUSTED, "max_pages": 30, "depth": 3,
                                 "render": "browser"}
    assert status["query"] == "127.0.0.1:8999" and status["count"] == 20
    plain = client.post("/api/jobs", json=_crawl(images=50)).get_json()["id"]  # defaults: http, MAX_CRAWL_PAGES
    with crawl_app.app_context():
        job = get_store().get_job(plain)
    assert job.options == {"mode": "crawl", "start_url": TRUSTED, "max_pages": 100, "depth": 20, "render": "http"}
    # The issue-9 caps count crawl jobs like the others: a third active job for this address is refused.
    third = client.post("/api/jobs", json=_crawl())
    assert third.status_code == 400 and third.get_json()["errors"][0]["field"] == "email"


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"start-url": ""}, "start-url", "start URL is required"),
    ({"start-url": "example.com/photos"}, "start-url", "must begin with http:// or https://"),
    ({"start-url": "ftp://files.example.com/"}, "start-url", "must begin with http:// or https://"),
    ({"start-url": "javascript:alert(1)"}, "start-url", "must begin with http:// or https://"),
    ({"start-url": "http://"}, "start-url", "must name a website"),
    ({"start-url": "http://[::1/"}, "start-url", "not a valid web address"),
    ({"start-url": "http://user:secret@127.0.0.1:8999/"}, "start-url", "user name or password"),
    ({"start-url": "http://127.0.0.1:9000/"}, "start-url", "a loopback address"),  # trusted is :8999 only
    ({"start-url": "http://localhost:8999/"}, "start-url", "a loopback address"),  # the host name is not trusted
    ({"start-url": "http://10.1.2.3/"}, "start-url", "a private address"),
    ({"start-url": "http://169.254.169.254/latest/meta-data/"}, "start-url", "link-local"),
    ({"start-url": TRUSTED + "a" * 2000}, "start-url", "at most 2000 characters"),
    ({"start-url": TRUSTED + "\u202egpj.exe"}, "start-url", "control or direction-changing characters"),
    ({"start-url": TRUSTED + "\n"}, "start-url", "control or direction-changing characters"),
    ({"start-url": ["http://a.example/"]}, "start-url", "must be text or a number"),
    ({"images": 51}, "images", "between 1 and 50"),
    ({"max-pages": 101}, "max-pages", "between 1 and 100"),
    ({"max-pages": "9" * 40}, "max-pages", "between 1 and 100"),
    ({"depth": "deep"}, "depth", "whole number"),
    ({"render": "gpu"}, "render", "one of http, browser"),
    ({"mode": "spider"}, "mode", "search or crawl"),
])
def test_each_refusal_names_its_field(crawl_app, fields, field, words):
    client = crawl_app.test_client()
    response = client.post("/api/jobs", json=_crawl(**fields))
    assert response.status_code == 400
    errors = {error["field"]: error["message"] for error in response.get_json()["errors"]}
    assert words in errors[field], errors
    with crawl_app.app_context():
        assert get_store().queued_jobs() == []


def test_the_form_shows_crawl_errors_in_crawl_mode(crawl_app):
    client = crawl_app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))[1]
    response = client.post("/", data={"csrf_token": token, **_crawl(**{"start-url": "http://10.0.0.7/"})})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'data-mode="crawl"' in page and 'id="mode-crawl" checked' in page
    summary = page[page.index('id="error-summary"'):page.index("</div>", page.index('id="error-summary"'))]
    assert re.findall(r'href="#([\w-]+)"', summary) == ["start-url"] and "Start URL: start URL is refused" in summary
    assert 'value="http://10.0.0.7/"' in page and 'aria-describedby="start-url-error"' in page
    accepted = client.post("/", data={"csrf_token": token, **_crawl()})
    assert accepted.status_code == 303
    assert "“127.0.0.1:8999”" in client.get(accepted.headers["Location"]).get_data(as_text=True)
