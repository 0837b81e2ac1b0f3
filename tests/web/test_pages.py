"""The pages: the form's fields, local assets, CSRF, the job page, download links and error pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from itsdangerous import TimestampSigner

from db import get_store
from jobs import files
from jobs.links import make_download_token

FUTURE = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")


def test_home_has_the_form_fields_and_a_csrf_token(make_app):
    page = make_app().test_client().get("/").get_data(as_text=True)
    for name in ("search-query", "email", "images", "date", "time", "timezone", "csrf_token"):
        assert f'name="{name}"' in page
    assert re.search(r'name="csrf_token" value="[^"]{20,}"', page)


def test_assets_are_served_by_the_app_itself(client):
    page = client.get("/").get_data(as_text=True)
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', page)
    assert external == []
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        with client.get(asset) as response:  # a static file is streamed: close it
            assert response.status_code == 200


def test_a_post_without_csrf_token_is_refused_and_keeps_the_inputs(make_app):
    client = make_app().test_client()
    response = client.post("/", data={"search-query": "red panda", "email": "a@example.com", "images": "5",
                                      "date": FUTURE, "time": "10:00"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "The form had expired" in page
    assert ">red panda</textarea>" in page  # the query is a textarea (one query a line)


def test_a_post_with_the_csrf_token_answers_303_to_the_job_page_and_a_reload_makes_no_second_job(make_app):
    app = make_app()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))[1]
    response = client.post("/", data={"csrf_token": token, "search-query": "red panda", "email": "a@example.com",
                                       "images": "5", "date": FUTURE, "time": "10:00", "timezone": "Europe/Paris"})
    assert response.status_code == 303
    job_url = response.headers["Location"]
    assert re.fullmatch(r"/jobs/[A-Za-z0-9_-]{22}", job_url)
    page = client.get(job_url).get_data(as_text=True)
    assert 'id="submitted"' in page and "red panda" in page
    assert f"It runs on <strong>{FUTURE} 10:00 (Europe/Paris)</strong>" in page  # what happens next
    assert 'id="cancel-form"' in page and 'name="csrf_token"' in page
    again = client.get(job_url).get_data(as_text=True)  # the reload: the same page, no "submitted", no new job
    assert 'id="submitted"' not in again and "red panda" in again
    with app.app_context():
        assert len(get_store().queued_jobs()) == 1


def test_the_form_opens_filled_in_from_a_try_again_link(client):
    page = client.get("/?search-query=red+panda%0Akoala&images=40&timezone=Asia%2FTokyo&split=80%2F20"
                      "&formats=png&unknown=x").get_data(as_text=True)
    assert ">red panda\nkoala</textarea>" in page
    assert 'value="40"' in page
    assert '<option value="Asia/Tokyo" selected>' in page
    assert '<option value="80/20" selected>' in page
    assert 'value="png" id="formats-png"\n        checked' in page
    assert 'value="jpeg" id="formats-jpeg"\n        >' in page


def test_errors_get_a_summary_that_links_each_field_and_the_past_marks_date_and_time(client):
    response = client.post("/", data={"search-query": "", "email": "nobody", "images": "3", "date": "2020-01-01",
                                      "time": "10:00", "timezone": "UTC"})
    page = response.get_data(as_text=True)
    summary = page[page.index('id="error-summary"'):page.index("</div>", page.index('id="error-summary"'))]
    assert 'tabindex="-1"' in summary and 'role="alert"' in summary
    assert re.findall(r'href="#([\w-]+)"', summary) == ["search-query", "email", "time"]
    assert "the scheduled time is in the past" in summary
    assert 'id="date" name="date" required value="2020-01-01"\n             aria-invalid="true" ' \
           'aria-describedby="time-error"' in page
    assert re.search(r'id="time" name="time"[^>]*aria-invalid="true"', page)


def test_job_ids_are_unguessable(client):
    ids = set()
    for _ in range(3):
        response = client.post("/api/jobs", json={"search-query": "q", "email": "a@example.com", "images": 1,
                                                  "date": FUTURE, "time": "10:00"})
        ids.add(response.get_json()["id"])
    assert len(ids) == 3
    assert all(len(job_id) >= 22 for job_id in ids)  # 128 random bits


def test_unknown_job_gets_a_clear_404(client):
    response = client.get("/jobs/nope")
    assert response.status_code == 404
    assert "There is no such job" in response.get_data(as_text=True)
    assert client.get("/api/jobs/nope").status_code == 404


def test_a_valid_link_downloads_the_zip(app, client, finished_job):
    with app.app_context():
        token = make_download_token(finished_job.id)
    with client.get(f"/download/{token}") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/zip"
        assert "red-panda-2-images.zip" in response.headers["Content-Disposition"]


def test_a_tampered_link_gets_the_error_page(app, client, finished_job):
    with app.app_context():
        token = make_download_token(finished_job.id)
    response = client.get(f"/download/{token[:-2]}xx")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "This download link is not valid" in page
    assert "Traceback" not in page


def test_an_expired_link_gets_the_error_page(app, client, finished_job, monkeypatch):
    ttl = int(app.config["LINK_TTL_MINUTES"] * 60)
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - ttl - 5)
    with app.app_context():
        token = make_download_token(finished_job.id)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    response = client.get(f"/download/{token}")
    assert response.status_code == 410
    assert "This download link has expired" in response.get_data(as_text=True)


def test_a_link_to_deleted_files_says_so(app, client, finished_job):
    with app.app_context():
        token = make_download_token(finished_job.id)
    files.remove_job_files(app, finished_job.id)
    response = client.get(f"/download/{token}")
    assert response.status_code == 410
    assert "These images have been deleted" in response.get_data(as_text=True)


def test_a_database_outage_gets_a_503_that_says_nothing_was_saved(app, client, monkeypatch):
    from db import StoreUnavailable
    from db.sqlite import SQLiteStore

    def down(self, job):
        raise StoreUnavailable("SQLite: disk I/O error")

    monkeypatch.setattr(SQLiteStore, "create_job", down)
    response = client.post("/", data={"search-query": "q", "email": "a@example.com", "images": "3",
                                      "date": FUTURE, "time": "10:00"})
    assert response.status_code == 503
    assert "temporarily unavailable: nothing was saved" in response.get_data(as_text=True)
    api = client.post("/api/jobs", json={"search-query": "q", "email": "a@example.com", "images": 3,
                                         "date": FUTURE, "time": "10:00"})
    assert api.status_code == 503
    assert "nothing was saved" in api.get_json()["error"]


def test_retention_deletes_files_and_personal_data(app, finished_job):
    from jobs.cleanup import purge_expired

    app.config["RETENTION_MINUTES"] = 0
    with app.app_context():
        assert purge_expired(app) == 1
        assert get_store().get_job(finished_job.id) is None
        assert get_store().events(finished_job.id) == []
    assert not files.zip_path(app, finished_job.id).exists()


def test_the_app_starts_while_the_database_is_down(make_app):
    """A dyno restarting during a database outage serves 503 pages instead of crashing."""
    from tests.fixtures.processes import free_port

    app = make_app(DATABASE_URL=f"cassandra://127.0.0.1:{free_port()}/aid", CASSANDRA_TIMEOUT_SECONDS=2,
                   WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.get("/").status_code == 200  # the form needs no database
    response = client.post("/api/jobs", json={"search-query": "q", "email": "a@example.com", "images": 3,
                                              "date": FUTURE, "time": "10:00"})
    assert response.status_code == 503
    assert "nothing was saved" in response.get_json()["error"]
