"""A person fills the form in real headless Chromium, confirms the address with the button of the emailed link, and
the job runs against the local fixture Bing and image server; a real SMTP server receives the emails; the emailed
link downloads the zip. Every job here goes through the confirmation step (EMAIL_CONFIRMATION=auto with SMTP)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from db import get_store
from scraper import browser as chromium
from tests.e2e.forms import open_form, pick_this_minute

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


CONFIRM = "Confirm your email address"


def _confirm_path(message) -> str:
    return re.search(r"http://[^/\s]+(/confirm/\S+)", message.get_body(("plain",)).get_content())[1]


def _confirm(client, smtp_server, email: str) -> None:
    """Open the emailed confirmation link and press its button, as the address's owner does."""
    messages = smtp_server.wait_for(lambda msgs: any(m["To"] == email and m["Subject"] == CONFIRM for m in msgs))
    path = _confirm_path([m for m in messages if m["To"] == email and m["Subject"] == CONFIRM][-1])
    page = client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    response = client.post(path, data={"csrf_token": token})
    assert response.status_code == 200 and 'id="confirmed"' in response.get_data(as_text=True)


def _submit_now(client, email: str, count: int, query: str = "red panda") -> str:
    now = datetime.now(UTC)
    response = client.post("/api/jobs", json={"search-query": query, "email": email, "images": count,
                                              "date": now.strftime("%Y-%m-%d"), "time": now.strftime("%H:%M:%S")})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "unconfirmed"
    return response.get_json()["id"]


def _check_email(message, job_path: str) -> None:
    """Every email: Date and Message-ID headers, a text and an HTML part, both with the job page's link."""
    assert message["Date"] and message["Message-ID"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert job_path in text and f"{job_path}\"" in html
    assert 'style="' in html and "<table" in html  # inline styles: mail programs read no style sheet


def test_form_to_emailed_zip(job_app, live_server, smtp_server, database_url):
    app = job_app(DATABASE_URL=database_url)
    server = live_server(app)
    browser = chromium.start(app.config["CHROME_BIN"], app.config["CHROMEDRIVER"])
    try:
        driver = browser.driver
        open_form(driver, server.url, "red panda", "person@example.com", 12)
        # The page filled today's date, the next minute and the browser's time zone (a visible list, the detected
        # zone chosen); a person wanting the images now picks the current minute in the time picker.
        assert driver.find_element(By.NAME, "date").get_attribute("value")
        zone = driver.find_element(By.ID, "timezone")
        detected = driver.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        assert zone.is_displayed() and zone.get_attribute("value") == detected
        pick_this_minute(driver)
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "submitted")))
        job_path = urlsplit(driver.current_url).path  # the POST answered 303 to the job's own page
        assert re.fullmatch(r"/jobs/[\w-]{22}", job_path)
        assert driver.find_element(By.ID, "confirm-needed").is_displayed()
        driver.refresh()  # a reload of the page the form landed on submits nothing
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "job-status")))
        with app.app_context():
            assert len(get_store(app).unconfirmed_before(datetime.now(UTC) + timedelta(days=1))) == 1
        driver.get(server.url + "/")  # the home page lists the jobs this browser submitted
        WebDriverWait(driver, 10).until(ec.text_to_be_present_in_element((By.ID, "recent-jobs-list"), "unconfirmed"))
        assert driver.find_element(By.CSS_SELECTOR, "#recent-jobs-list a").get_attribute("href").endswith(job_path)

        # The only email so far asks to confirm the address; its link opens a page with one button.
        [confirm] = smtp_server.wait_for(lambda msgs: len(msgs) >= 1)
        assert confirm["Subject"] == CONFIRM
        driver.get(server.url + _confirm_path(confirm))
        driver.find_element(By.ID, "confirm").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "confirmed")))
        assert "1 waiting job is now queued" in driver.find_element(By.ID, "confirmed-jobs").text

        # The job's page follows it live (the page reloads itself when the status changes).
        driver.get(server.url + job_path)
        WebDriverWait(driver, 120).until(ec.text_to_be_present_in_element((By.ID, "job-status"), "Done"))
        assert driver.find_element(By.ID, "job-live").get_attribute("aria-live") == "polite"
        bar = driver.find_element(By.ID, "job-progress")
        assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("12", "12")
        assert "12 of 12 images" in driver.find_element(By.ID, "job-counts").text
        events = driver.find_elements(By.CSS_SELECTOR, "#job-events li")
        assert 5 <= len(events) <= 30
        log = driver.find_element(By.ID, "job-events").text
        assert "job started" in log and "zip written: 12 images" in log
        # The link works LINK_TTL_MINUTES from the "done" email on: its date is today's, or tomorrow's near midnight.
        expiry, now = driver.find_element(By.ID, "download-expiry").text, datetime.now(UTC)
        ttl = timedelta(minutes=float(app.config["LINK_TTL_MINUTES"]))
        assert any(f"until {day:%Y-%m-%d} " in expiry for day in (now, now + ttl)), expiry
        previews = driver.find_elements(By.CSS_SELECTOR, "#previews img")
        assert len(previews) == 8
        # The scraper's browser loads no images: the page's script fetches each preview and decodes it instead.
        sizes = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "Promise.all(Array.from(document.querySelectorAll('#previews img')).map(i => fetch(i.src)"
            ".then(r => r.blob()).then(b => createImageBitmap(b)).then(b => [b.width, b.height])))"
            ".then(done, e => done(String(e)));")
        assert len(sizes) == 8 and all(0 < max(size) <= 128 for size in sizes), sizes
        button = driver.find_element(By.ID, "download")
        assert "12 images" in button.text and ("KB" in button.text or "MB" in button.text)
        link = button.get_attribute("href")

        messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
        subjects = [m["Subject"] for m in messages]
        assert subjects == [CONFIRM, "Your images are being collected", "Your images are ready"]
        for message in messages:
            _check_email(message, job_path)
        assert "12 images" in messages[2].get_body(("plain",)).get_content()
        assert _link(messages[2]).startswith(server.url + "/download/")

        response = requests.get(link, timeout=30)  # the page's button: a signed link like the email's
        assert response.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        assert {n.split("/", 1)[0] for n in archive.namelist()} == {"red-panda-12-images"}  # one folder
        images = [n for n in archive.namelist() if n.startswith("red-panda-12-images/images/")]
        assert len(images) == 12
        digests = set()
        for name in images:
            data = archive.read(name)
            digests.add(hashlib.sha256(data).hexdigest())
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
        assert len(digests) == 12
        manifest = list(csv.DictReader(io.StringIO(archive.read("red-panda-12-images/manifest.csv").decode())))
        assert sorted("red-panda-12-images/" + row["file"] for row in manifest) == sorted(images)
        assert {row["sha256"] for row in manifest} == digests

        # A tampered link gets the error page, not a trace.
        driver.get(link[:-3] + "abc")
        assert "This download link is not valid" in driver.find_element(By.ID, "error-message").text
    finally:
        browser.quit()


def test_a_failed_job_offers_the_form_filled_in_and_a_waiting_job_can_be_cancelled(job_app, live_server,
                                                                                    smtp_server, engines):
    engines.set_mode("bing", "empty")
    app = job_app()
    server = live_server(app)
    client = app.test_client()
    job_id = _submit_now(client, "nothing@example.com", 5, "zzqx nothing")
    _confirm(client, smtp_server, "nothing@example.com")
    messages = smtp_server.wait_for(lambda msgs: any("could not be collected" in m["Subject"] for m in msgs), 90)
    failed = [m for m in messages if "could not be collected" in m["Subject"]][0]
    _check_email(failed, f"/jobs/{job_id}")
    body = failed.get_body(("plain",)).get_content()
    assert "no images could be delivered for “zzqx nothing”" in body
    assert f"{server.url}/?search-query=zzqx+nothing&images=5&timezone=UTC" in body  # "submit again", filled in
    with app.app_context():
        job = get_store(app).get_job(job_id)
    assert job.status == "failed" and job.error in body
    later = datetime.now(UTC) + timedelta(days=1)
    waiting = client.post("/api/jobs", json={"search-query": "koala", "email": "nothing@example.com", "images": 3,
                                             "date": f"{later:%Y-%m-%d}", "time": "10:00"}).get_json()["id"]

    browser = chromium.start(app.config["CHROME_BIN"], app.config["CHROMEDRIVER"])
    try:
        driver = browser.driver
        driver.get(f"{server.url}/jobs/{job_id}")
        assert "no images could be delivered" in driver.find_element(By.ID, "job-error").text
        driver.find_element(By.ID, "try-again").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "job-form")))
        assert driver.find_element(By.ID, "search-query").get_attribute("value") == "zzqx nothing"
        assert driver.find_element(By.ID, "images").get_attribute("value") == "5"

        driver.get(f"{server.url}/jobs/{waiting}")  # the Cancel button: a form with its CSRF token
        driver.find_element(By.ID, "cancel").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "cancelled")))
        assert driver.find_element(By.ID, "job-status").text == "Cancelled"
        assert "search-query=koala" in driver.find_element(By.ID, "try-again").get_attribute("href")
    finally:
        browser.quit()
    with app.app_context():
        assert get_store(app).get_job(waiting).status == "cancelled"


def test_smtp_down_when_the_job_finishes(job_app, smtp_server, engines):
    app = job_app(CLEANUP_INTERVAL_SECONDS=1, IMAGE_SOURCES=["urls"], URL_LIST=engines.url_list)  # mail, not browser
    client = app.test_client()
    job_id = _submit_now(client, "later@example.com", 4)
    messages = smtp_server.wait_for(lambda msgs: len(msgs) == 1)
    path = _confirm_path(messages[0])
    page = client.get(path).get_data(as_text=True)
    smtp_server.stop()  # the server goes down after the confirmation email: the job's emails cannot go out
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    assert client.post(path, data={"csrf_token": token}).status_code == 200
    with app.app_context():
        store = get_store(app)
        # Until the job has given up on its own "done" email: restarted sooner, the server would get that email both
        # from the job's last attempt and from the upkeep's retry of the pending mark (delivery is at-least-once).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
            store.get_job(job_id).status == "done"
            and any("“done” email could not be sent" in e.message for e in store.events(job_id))
        ):
            time.sleep(0.2)
        job = store.get_job(job_id)
        assert job.status == "done"  # the job is done although its email could not go out
        assert job.mail_pending is not None and "done" not in job.mails_sent
        assert any("could not be sent" in e.message for e in store.events(job_id))
        smtp_server.start()
        messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
        assert [m["To"] for m in messages if "are ready" in m["Subject"]] == ["later@example.com"]
        # The upkeep records the send just after the server has the message: give it that moment.
        deadline = time.monotonic() + 10
        while store.get_job(job_id).mail_pending is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        job = store.get_job(job_id)
        assert job.mail_pending is None and "done" in job.mails_sent


def test_every_engine_dead_sends_the_engines_error_email(job_app, smtp_server, engines):
    for engine in ("bing", "duckduckgo", "google"):
        engines.set_mode(engine, "dead")
    app = job_app(IMAGE_SOURCES=["bing", "duckduckgo", "google"], DUCKDUCKGO_URL=engines.duckduckgo_url,
                  GOOGLE_URL=engines.google_url, COLLECT_TIMEOUT_SECONDS=20)
    client = app.test_client()
    job_id = _submit_now(client, "dead@example.com", 5)
    _confirm(client, smtp_server, "dead@example.com")
    messages = smtp_server.wait_for(lambda msgs: any("could not be collected" in m["Subject"] for m in msgs), 120)
    failed = [m for m in messages if "could not be collected" in m["Subject"]][0]
    assert "the image search engines did not answer; try again later" in failed.get_body(("plain",)).get_content()
    with app.app_context():
        job = get_store(app).get_job(job_id)
        events = " | ".join(e.message for e in get_store(app).events(job_id))
    assert job.status == "failed"
    assert "bing" in events and "duckduckgo" in events and "google" in events  # the log says why each stopped


def test_three_jobs_wait_for_one_confirmation_and_the_button_runs_them(job_app, smtp_server, engines):
    app = job_app(IMAGE_SOURCES=["urls"], URL_LIST=engines.url_list)
    client = app.test_client()
    ids = [_submit_now(client, "three@example.com", 2, query) for query in ("red panda", "koala", "otter")]
    smtp_server.wait_for(lambda msgs: len(msgs) >= 1)
    time.sleep(3)  # the scheduler polls every second: a job that should not run would have started now
    assert [m["Subject"] for m in smtp_server.messages] == [CONFIRM]
    with app.app_context():
        store = get_store(app)
        assert [store.get_job(job_id).status for job_id in ids] == ["unconfirmed"] * 3
        assert not any(e.message.startswith("job started") for job_id in ids for e in store.events(job_id))

    _confirm(client, smtp_server, "three@example.com")
    messages = smtp_server.wait_for(lambda msgs: sum(m["Subject"] == "Your images are ready" for m in msgs) >= 3,
                                    timeout=120)
    subjects = sorted(m["Subject"] for m in messages)
    assert subjects == sorted([CONFIRM] + ["Your images are being collected"] * 3 + ["Your images are ready"] * 3)
    with app.app_context():
        assert [get_store(app).get_job(job_id).status for job_id in ids] == ["done"] * 3
