"""A person fills the form in real headless Chromium; the job runs against the local fixture Bing and image
server; a real SMTP server receives the emails; the emailed link downloads the zip."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
import zipfile
from datetime import UTC, datetime

import pytest
import requests
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from db import get_store
from scraper import browser as chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def job_app(make_app, smtp_server, engines, image_server):
    """An app that runs jobs (scheduler on) against the fixture Bing, mailing the test SMTP server."""
    engines.reset()

    def factory(**settings):
        config = {**smtp_server.settings(), "BING_URL": engines.bing_url, "IMAGE_SOURCES": ["bing"],
                  "SCHEDULER_START": True, "POLL_INTERVAL_SECONDS": 1, "CLEANUP_INTERVAL_SECONDS": 1,
                  "MAIL_RETRIES": 2}
        config.update(settings)
        return make_app(**config)

    yield factory
    engines.reset()


def _link(message) -> str:
    return re.search(r"(http://\S+/download/\S+)", message.get_body(("plain",)).get_content())[1]


def _submit_now(client, email: str, count: int, query: str = "red panda") -> str:
    now = datetime.now(UTC)
    response = client.post("/api/jobs", json={"search-query": query, "email": email, "images": count,
                                              "date": now.strftime("%Y-%m-%d"), "time": now.strftime("%H:%M:%S")})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_form_to_emailed_zip(job_app, live_server, smtp_server, database_url):
    app = job_app(DATABASE_URL=database_url)
    server = live_server(app)
    browser = chromium.start(app.config["CHROME_BIN"], app.config["CHROMEDRIVER"])
    try:
        driver = browser.driver
        driver.get(server.url + "/")
        driver.find_element(By.NAME, "search-query").send_keys("red panda")
        driver.find_element(By.NAME, "email").send_keys("person@example.com")
        driver.find_element(By.NAME, "images").send_keys("12")
        # The page filled today's date, the next minute and the browser's time zone; a person wanting the
        # images now picks the current minute in the time picker.
        assert driver.find_element(By.NAME, "date").get_attribute("value")
        assert driver.find_element(By.NAME, "timezone").get_attribute("value")
        driver.execute_script(
            "var d = new Date(); var p = n => String(n).padStart(2, '0');"
            "document.getElementById('time').value = p(d.getHours()) + ':' + p(d.getMinutes());")
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "submitted")))
        assert "Your job has been submitted" in driver.page_source
        driver.find_element(By.ID, "job-link").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "job-status")))

        messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=120)
        subjects = [m["Subject"] for m in messages]
        assert subjects == ["Your images of “red panda” are being collected",
                            "Your 12 images of “red panda” are ready"]
        link = _link(messages[1])
        assert link.startswith(server.url)

        response = requests.get(link, timeout=30)
        assert response.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        images = [n for n in archive.namelist() if n.startswith("images/")]
        assert len(images) == 12
        digests = set()
        for name in images:
            data = archive.read(name)
            digests.add(hashlib.sha256(data).hexdigest())
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
        assert len(digests) == 12
        manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8"))))
        assert sorted(row["file"] for row in manifest) == sorted(images)
        assert {row["sha256"] for row in manifest} == digests

        # The job page shows the phases as they happened.
        driver.get(server.url + re.search(r"(/jobs/\S+)", messages[0].get_body(("plain",)).get_content())[1])
        WebDriverWait(driver, 10).until(ec.text_to_be_present_in_element((By.ID, "job-status"), "done"))
        events = driver.find_element(By.ID, "job-events").text
        assert "job started" in events and "zip written: 12 images" in events

        # A tampered link gets the error page, not a trace.
        driver.get(link[:-3] + "abc")
        assert "This download link is not valid" in driver.find_element(By.ID, "error-message").text
    finally:
        browser.quit()


def test_an_engine_with_no_results_sends_the_error_email(job_app, smtp_server, engines):
    engines.set_mode("bing", "empty")
    app = job_app()
    job_id = _submit_now(app.test_client(), "nothing@example.com", 5, "zzqx nothing")
    messages = smtp_server.wait_for(lambda msgs: any("could not be collected" in m["Subject"] for m in msgs), 90)
    failed = [m for m in messages if "could not be collected" in m["Subject"]][0]
    body = failed.get_body(("plain",)).get_content()
    assert "no images could be delivered for “zzqx nothing”" in body
    assert app.config["PUBLIC_URL"] in body  # a link back to the home page
    with app.app_context():
        job = get_store(app).get_job(job_id)
    assert job.status == "failed" and job.error in body


def test_smtp_down_when_the_job_finishes(job_app, smtp_server):
    app = job_app(CLEANUP_INTERVAL_SECONDS=1)
    smtp_server.stop()
    job_id = _submit_now(app.test_client(), "later@example.com", 4)
    with app.app_context():
        store = get_store(app)
        deadline = time.monotonic() + 90
        while store.get_job(job_id).status != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
        job = store.get_job(job_id)
        assert job.status == "done"  # the job is done although its email could not go out
        assert job.mail_pending is not None and "done" not in job.mails_sent
        assert any("could not be sent" in e.message for e in store.events(job_id))
        smtp_server.start()
        messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
        assert [m["To"] for m in messages if "are ready" in m["Subject"]] == ["later@example.com"]
        job = store.get_job(job_id)
        assert job.mail_pending is None and "done" in job.mails_sent


def test_every_engine_dead_sends_the_engines_error_email(job_app, smtp_server, engines):
    for engine in ("bing", "duckduckgo", "google"):
        engines.set_mode(engine, "dead")
    app = job_app(IMAGE_SOURCES=["bing", "duckduckgo", "google"], DUCKDUCKGO_URL=engines.duckduckgo_url,
                  GOOGLE_URL=engines.google_url, COLLECT_TIMEOUT_SECONDS=20)
    job_id = _submit_now(app.test_client(), "dead@example.com", 5)
    messages = smtp_server.wait_for(lambda msgs: any("could not be collected" in m["Subject"] for m in msgs), 120)
    failed = [m for m in messages if "could not be collected" in m["Subject"]][0]
    assert "the image search engines did not answer; try again later" in failed.get_body(("plain",)).get_content()
    with app.app_context():
        job = get_store(app).get_job(job_id)
        events = " | ".join(e.message for e in get_store(app).events(job_id))
    assert job.status == "failed"
    assert "bing" in events and "duckduckgo" in events and "google" in events  # the log says why each stopped
