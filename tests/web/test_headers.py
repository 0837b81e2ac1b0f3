"""Security headers on every page, the session cookie's flags, a private zip download, and no inline script."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.links import make_download_token

ROOT = Path(__file__).resolve().parents[2]
FUTURE = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
JOB = {"search-query": "red panda", "email": "headers@example.com", "images": 1, "date": FUTURE, "time": "10:00"}


def assert_security_headers(response) -> None:
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.fixture
def done_job(app, finished_job):
    with app.app_context():
        return finished_job, make_download_token(finished_job.id)


def test_every_kind_of_page_carries_the_headers(client, done_job):
    job, token = done_job
    requests = [
        ("GET", "/", None), ("GET", "/static/app.js", None), ("GET", "/static/style.css", None),
        ("GET", f"/jobs/{job.id}", None), ("GET", f"/api/jobs/{job.id}", None), ("GET", "/jobs/nope", None),
        ("GET", "/api/jobs/nope", None), ("GET", "/no-such-page", None), ("GET", f"/download/{token}", None),
        ("GET", "/download/bad-token", None), ("POST", "/", {"search-query": ""}), ("POST", "/api/jobs", {}),
        ("POST", "/", JOB), ("POST", "/api/jobs", JOB), ("DELETE", "/", None),
    ]
    seen = set()
    for method, path, data in requests:
        kind = {"json": data} if path.startswith("/api/") else {"data": data}
        with client.open(path, method=method, **kind) as response:  # a download is streamed: close it
            assert_security_headers(response)
            seen.add(response.status_code)
    assert {200, 201, 303, 400, 404, 405} <= seen


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/").headers
    secure = client.get("/", base_url="https://aid.example.com")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_hsts_behind_a_trusted_proxy_that_terminated_https(make_app):
    client = make_app(TRUSTED_PROXIES=1).test_client()
    response = client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "; Secure" in response.headers["Set-Cookie"]


def test_the_session_cookie_is_samesite_lax_and_httponly(make_app):
    response = make_app().test_client().get("/")  # the form's CSRF token lives in the session
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "SameSite=Lax" in cookie
    assert "HttpOnly" in cookie
    assert "Secure" not in cookie  # plain http in local development: a Secure cookie would never come back


def test_the_session_cookie_is_secure_over_https(make_app):
    client = make_app().test_client()
    assert "; Secure" in client.get("/", base_url="https://aid.example.com").headers["Set-Cookie"]
    https_app = make_app(PUBLIC_URL="https://aid.example.com")
    assert "; Secure" in https_app.test_client().get("/").headers["Set-Cookie"]


def test_the_zip_download_is_private_and_never_stored(client, done_job):
    _, token = done_job
    with client.get(f"/download/{token}") as response:
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "private, no-store"


def inline_code(html: str) -> list[str]:
    """What a CSP without 'unsafe-inline' would block: inline scripts and styles, handlers, javascript: links."""
    found = [tag for tag in re.findall(r"<script\b[^>]*>", html, re.IGNORECASE) if "src=" not in tag]
    for pattern in (r"<style\b", r"\sstyle\s*=", r"\son[a-z]+\s*=", r"javascript:"):
        found += re.findall(pattern, html, re.IGNORECASE)
    return found


def test_templates_have_no_inline_script_or_style():
    pages = [p for p in sorted((ROOT / "templates").rglob("*.html")) if "email" not in p.parts]  # emails: not pages
    assert pages
    for path in pages:
        assert inline_code(path.read_text(encoding="utf-8")) == [], path


def test_the_check_sees_inline_code():
    page = '<p onclick="x()" style="color:red">a</p><script>alert(1)</script><script src="/static/app.js"></script>'
    assert len(inline_code(page)) == 3
