"""Fill in the home page's form in the real browser, as a person does."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver


def open_form(driver: WebDriver, base_url: str, query: str, email: str, images: int) -> None:
    """Open the home page and type the query (one class a line), the email and the number of images."""
    driver.get(base_url + "/")
    driver.find_element(By.NAME, "search-query").send_keys(query)
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "images").send_keys(str(images))


def pick_this_minute(driver: WebDriver) -> None:
    """Set the time picker to the current minute, as a person wanting the images now does."""
    driver.execute_script(
        "var d = new Date(); var p = n => String(n).padStart(2, '0');"
        "document.getElementById('time').value = p(d.getHours()) + ':' + p(d.getMinutes());")
