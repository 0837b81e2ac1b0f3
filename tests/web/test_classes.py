"""A finished job of several classes: the job page and the API give the count and the shortfall per class,
read back from what the database stored (the classes in the options, the result per class in the note)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from db import DONE, Job, get_store
from jobs.classes import ClassResult, results_note

SHORT = ("found 5 of 6 images: 9 candidates, 3 broken links; no more candidates; "
         "1 dropped as also found for another class")


@pytest.fixture
def classes_job(make_app, database_url):
    app = make_app(DATABASE_URL=database_url)
    now = datetime.now(UTC)
    queries = ["cat", "Café au lait"]
    job = Job(id="job-classes-test", query=", ".join(queries), email="a@example.com", count=6, run_at=now,
              created_at=now, options={"classes": queries, "split": "80/20", "layout": "imagefolder"})
    note = results_note([ClassResult("cat", "cat", 6, 6), ClassResult("Café au lait", "cafe-au-lait", 6, 4, SHORT)])
    with app.app_context():
        store = get_store()
        store.create_job(job)
        assert store.claim_job(job.id, "w", now)
        assert store.finish_job(job.id, "w", DONE, now, delivered=10, zip_name="x.zip", zip_bytes=1, note=note)
    return app, job


def test_the_api_and_the_page_give_each_class(classes_job):
    app, job = classes_job
    client = app.test_client()
    status = client.get(f"/api/jobs/{job.id}").get_json()
    assert status["classes"] == [
        {"query": "cat", "folder": "cat", "wanted": 6, "delivered": 6, "shortfall": 0, "reason": None},
        {"query": "Café au lait", "folder": "cafe-au-lait", "wanted": 6, "delivered": 4, "shortfall": 2,
         "reason": SHORT},
    ]
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert '<td>cafe-au-lait/</td><td>Café au lait</td>' in page
    assert "4 of 6" in page and f"2 short: {SHORT}" in page
