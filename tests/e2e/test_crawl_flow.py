"""A web crawl job from the form to the "done" email: a person picks "Crawl a website" in real headless Chromium,
confirms the address, and the job crawls the fixture site (tests/fixtures/site.py, http mode) with the address
guard on and only the site trusted; the zip comes by the emailed link. Once on SQLite, once on Cassandra; the
crawl's state is in the Store while the job exists and gone after the retention purge."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from urllib.parse import urlsplit

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from db import get_store
from jobs.cleanup import purge_expired
from scraper import browser as chromium
from tests.e2e.forms import pick_this_minute
from tests.fixtures.site import start_site

pytestmark = pytest.mark.browser
IMAGES = 4
MAX_PAGES = 10


@pytest.fixture(scope="module")
def small_site():
    handle = start_site(12)  # 12 photos; the other loopback port too, which the guard must keep out
    yield handle
    handle.stop()


def test_crawl_job_from_the_form_to_the_emailed_zip(make_app, live_server, smtp_server, small_site, database_url):
    small_site.clear_requests()
    app = make_app(**smtp_server.settings(), DATABASE_URL=database_url, SCHEDULER_START=True,
                   POLL_INTERVAL_SECONDS=1, ALLOW_PRIVATE_URLS=False, GUARD_TRUSTED_HOSTS=[small_site.trusted],
                   CRAWL_DELAY_SECONDS=0)
    server = live_server(app)
    browser = chromium.start(app.config["CHROME_BIN"], app.config["CHROMEDRIVER"])
    try:
        driver = browser.driver
        driver.get(server.url + "/")
        assert driver.find_element(By.ID, "search-query").is_displayed()
        assert not driver.find_element(By.ID, "start-url").is_displayed()
        driver.find_element(By.ID, "mode-crawl").click()  # the second mode: the query gives way to a start URL
        assert not driver.find_element(By.ID, "search-query").is_displayed()
        driver.find_element(By.ID, "start-url").send_keys(small_site.url)
        driver.find_element(By.NAME, "email").send_keys("crawler@example.com")
        driver.find_element(By.NAME, "images").send_keys(str(IMAGES))
        driver.find_element(By.NAME, "max-pages").send_keys(str(MAX_PAGES))
        pick_this_minute(driver)
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "submitted")))
        job_path = urlsplit(driver.current_url).path
        job_id = job_path.rsplit("/", 1)[1]
        assert f"“127.0.0.1:{small_site.port}”" in driver.find_element(By.TAG_NAME, "h1").text

        [confirm] = smtp_server.wait_for(lambda msgs: len(msgs) >= 1)
        driver.get(server.url + re.search(r"http://[^/\s]+(/confirm/\S+)",
                                          confirm.get_body(("plain",)).get_content())[1])
        driver.find_element(By.ID, "confirm").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "confirmed")))
        driver.get(server.url + job_path)
        WebDriverWait(driver, 120).until(ec.text_to_be_present_in_element((By.ID, "job-status"), "Done"))
        log = driver.find_element(By.ID, "job-events").text
        assert "crawl started: http mode" in log and f"zip written: {IMAGES} images" in log
    finally:
        browser.quit()

    messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
    assert [m["Subject"] for m in messages] == ["Confirm your email address", "Your images are being collected",
                                                "Your images are ready"]
    done = messages[2].get_body(("plain",)).get_content()
    assert f"{IMAGES} images" in done and small_site.url not in done  # the site is named, its URL never linked
    link = re.search(r"(http://\S+/download/\S+)", done)[1]
    response = requests.get(link, timeout=30)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    root = f"127-0-0-1-{small_site.port}-{IMAGES}-images"
    names = archive.namelist()
    assert {n.split("/", 1)[0] for n in names} == {root}
    images = sorted(n for n in names if n.startswith(f"{root}/images/"))
    metadata = sorted(n for n in names if n.startswith(f"{root}/metadata/"))
    assert len(images) == IMAGES and len(metadata) == IMAGES
    assert {f"{root}/manifest.csv", f"{root}/failures.csv"} <= set(names)
    manifest = list(csv.DictReader(io.StringIO(archive.read(f"{root}/manifest.csv").decode())))
    assert sorted(f"{root}/{row['file']}" for row in manifest) == images
    for name in metadata:
        record = json.loads(archive.read(name))
        assert record["page_url"].startswith(small_site.url) and record["image_url"].startswith(small_site.url)
    assert small_site.paths(small_site.other_port) == []  # the guard kept the other loopback port out

    with app.app_context():
        store = get_store(app)
        state = store.crawl_state(job_id)  # the crawl's state is the Store's, not a file
        try:
            counts = state.counts()
            assert counts["images_saved"] == IMAGES and 1 <= counts["pages_visited"] <= MAX_PAGES
            assert state.get_meta("start_url") == small_site.url
            assert len(state.saved()) == IMAGES
        finally:
            state.close()
        app.config["RETENTION_MINUTES"] = 0  # the job's retention is over: the periodic purge deletes it
        purge_expired(app)
        assert store.get_job(job_id) is None
        gone = store.crawl_state(job_id)
        try:
            assert gone.counts() == {} and gone.get_meta("start_url") is None and gone.saved() == []
        finally:
            gone.close()
