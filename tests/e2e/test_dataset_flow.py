"""Issue 12's acceptance: a three-class job through the form (real Chromium, fixture Bing) and through the API
(Openverse stand-in, both databases) gives a zip that loads as an ImageFolder, with metadata.jsonl, one folder per
class, no image in two classes, and the count per class on the job page, in the API and in the email."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from scraper import browser as chromium
from tests.e2e.forms import open_form, pick_this_minute
from tests.fixtures import imagefolder

pytestmark = pytest.mark.browser
API_KEY = "dataset-test-key"


@pytest.fixture
def dataset_app(make_app, smtp_server, engines, open_apis):
    engines.reset()

    def factory(**settings):
        config = {**smtp_server.settings(), "BING_URL": engines.bing_url, "IMAGE_SOURCES": ["bing"],
                  "OPENVERSE_URL": open_apis.openverse_url, "SCHEDULER_START": True, "POLL_INTERVAL_SECONDS": 1,
                  "CLEANUP_INTERVAL_SECONDS": 1, "API_KEYS": [API_KEY], "EMAIL_CONFIRMATION": "off"}
        return make_app(**{**config, **settings})

    yield factory
    engines.reset()


def _ready_email(smtp_server, to: str):
    messages = smtp_server.wait_for(lambda msgs: any(m["To"] == to and "are ready" in m["Subject"] for m in msgs),
                                    timeout=180)
    return [m for m in messages if m["To"] == to and "are ready" in m["Subject"]][0].get_body(("plain",)).get_content()


def _download(body: str, tmp_path, name: str, client=None):
    link = re.search(r"(http://\S+/download/\S+)", body)[1]
    if client is None:
        response = requests.get(link, timeout=30)
        assert response.status_code == 200
        content = response.content
    else:  # no server listens on PUBLIC_URL: the app's test client opens the same path
        with client.get(urlsplit(link).path) as answer:  # a streamed file: closed, or it leaks its handle
            assert answer.status_code == 200
            content = answer.get_data()
    (tmp_path / f"{name}.zip").write_bytes(content)
    return imagefolder.extract(tmp_path / f"{name}.zip", tmp_path / name)


def test_three_classes_with_a_split_through_the_form(dataset_app, live_server, smtp_server, tmp_path):
    app = dataset_app()
    server = live_server(app)
    browser = chromium.start(app.config["CHROME_BIN"], app.config["CHROMEDRIVER"])
    try:
        driver = browser.driver
        open_form(driver, server.url, "red panda\nsnow leopard\nfennec fox", "form@example.com", 10)
        driver.find_element(By.TAG_NAME, "summary").click()
        driver.find_element(By.CSS_SELECTOR, "input[name=formats][value=gif]").click()  # ImageFolder reads no GIF
        Select(driver.find_element(By.ID, "split")).select_by_value("80/20")
        pick_this_minute(driver)
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "job-status")))  # the job's page
        job_page = driver.current_url

        body = _ready_email(smtp_server, "form@example.com")
        assert "30 images" in body
        for line in ("red-panda/ “red panda”: 10 of 10 images", "snow-leopard/ “snow leopard”: 10 of 10 images",
                     "fennec-fox/ “fennec fox”: 10 of 10 images"):
            assert line in body
        root = _download(body, tmp_path, "form")
        assert imagefolder.per_class(root / "train") == {"fennec-fox": 8, "red-panda": 8, "snow-leopard": 8}
        assert imagefolder.per_class(root / "val") == {"fennec-fox": 2, "red-panda": 2, "snow-leopard": 2}
        rows = imagefolder.metadata(root / "train") + imagefolder.metadata(root / "val")
        assert len(rows) == 30 and len({row["sha256"] for row in rows}) == 30  # no image in two classes
        assert {row["engine"] for row in rows} == {"bing"}

        driver.get(job_page)
        WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#job[data-status=done]")))
        rows_text = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#job-classes .class-row")]
        assert rows_text == ["red-panda/ red panda 10 of 10", "snow-leopard/ snow leopard 10 of 10",
                             "fennec-fox/ fennec fox 10 of 10"]
    finally:
        browser.quit()


def test_three_classes_through_the_api(dataset_app, smtp_server, database_url, tmp_path):
    app = dataset_app(DATABASE_URL=database_url, IMAGE_SOURCES=["openverse"])
    client = app.test_client()
    now = datetime.now(UTC)
    response = client.post("/api/jobs", headers={"Authorization": f"Bearer {API_KEY}"}, json={
        "search-query": ["red panda", "Snow leopard", "fennec fox", "red  panda"], "email": "api@example.com",
        "images": 8, "date": now.strftime("%Y-%m-%d"), "time": now.strftime("%H:%M:%S"), "licence": "open",
        "formats": ["jpeg", "png", "webp"]})
    assert response.status_code == 201, response.get_json()
    status_url = response.get_json()["status_url"]
    deadline = time.monotonic() + 180
    status = client.get(status_url).get_json()
    while status["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        status = client.get(status_url).get_json()
    assert status["status"] == "done", status
    assert [(c["folder"], c["query"], c["delivered"], c["shortfall"]) for c in status["classes"]] == [
        ("red-panda", "red panda", 8, 0), ("snow-leopard", "Snow leopard", 8, 0), ("fennec-fox", "fennec fox", 8, 0)]
    assert status["delivered"] == 24

    root = _download(_ready_email(smtp_server, "api@example.com"), tmp_path, "api", client)
    assert imagefolder.per_class(root) == {"fennec-fox": 8, "red-panda": 8, "snow-leopard": 8}
    rows = imagefolder.metadata(root)
    assert len(rows) == 24 and len({row["sha256"] for row in rows}) == 24
    assert all(row["license"] and row["creator"] for row in rows)  # licence filter "open": Openverse only
    credits = [line for line in (root / "ATTRIBUTION.txt").read_text().splitlines() if line[:1].isalpha()
               and "/" in line.split(":")[0]]
    assert len(credits) == sum(1 for row in rows if row["license"] not in ("cc0", "pdm"))
