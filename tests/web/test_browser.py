"""The inbox in a real browser: headless Chromium answers a flow waiting on a real worker.

A wrong-typed answer shows its error next to the field and the request stays pending;
a right one resumes the flow, and the flow page (live-updating) reaches ``done``. A
screenshot of each step is kept under ``tmp/artifacts/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

import enact.worker
from tests.web import flows

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tmp" / "artifacts"


def chromium() -> Any:
    """A headless Chromium driven by Selenium (Debian's chromium and chromium-driver)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        from tests.conftest import unavailable

        unavailable("chromium and chromium-driver are needed for the browser test")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1200,1400"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ignore = ARTIFACTS.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return ARTIFACTS / name


def wait_for(browser: Any, condition: Any, timeout_s: float = 60) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout_s, poll_frequency=0.1).until(condition)


def test_answer_in_the_inbox_then_watch_the_flow_finish(server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    flow = enact.worker.submit(flows.pick_best, 3)
    assert flow.wait(60) == "waiting"
    [pending] = flow.pending_inputs()

    browser.get(server + "/inbox")
    form = browser.find_element(By.CSS_SELECTOR, f'form[data-request-id="{pending.id}"]')
    card = browser.find_element(By.ID, f"request-{pending.id}")
    samples = [int(li.text) for li in card.find_elements(By.CSS_SELECTOR, ".context ol li")]
    assert len(samples) == 3  # the context, as a numbered list
    assert "Which sample is best?" in card.text and "pick_best" in card.text

    # Wrong type: 1.5 for an int. The error stands next to the field; still pending.
    field = form.find_element(By.NAME, "value")
    field.send_keys("1.5")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_for(
        browser, lambda b: b.find_element(By.CSS_SELECTOR, f'[data-error-for="{pending.id}"]')
    )
    assert "does not match the requested type int" in error.text
    browser.save_screenshot(str(artifact("inbox-wrong-type.png")))
    assert [p.id for p in flow.pending_inputs()] == [pending.id]
    assert flow.status() == "waiting"

    # The right answer: the flow resumes on the worker; its page updates itself to done.
    form = browser.find_element(By.CSS_SELECTOR, f'form[data-request-id="{pending.id}"]')
    field = form.find_element(By.NAME, "value")
    field.clear()
    field.send_keys("1")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page = wait_for(
        browser,
        lambda b: b.find_element(By.CSS_SELECTOR, '[data-flow-status="done"]'),
    )
    assert page.get_attribute("data-flow-id") == flow.id
    browser.save_screenshot(str(artifact("flow-done.png")))
    assert flow.result() == samples[1]
    assert "pick_best(3)" in browser.find_element(By.CSS_SELECTOR, ".tree").text


def test_the_form_follows_the_requested_type(server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    color = enact.worker.submit(flows.choose_color)
    point = enact.worker.submit(flows.place)
    ok = enact.worker.submit(flows.confirm)
    for flow in (color, point, ok):
        assert flow.wait(60) == "waiting"
    ids = {flow.id: flow.pending_inputs()[0].id for flow in (color, point, ok)}

    browser.get(server + "/inbox")

    def form(flow: Any) -> Any:
        return browser.find_element(By.CSS_SELECTOR, f'form[data-request-id="{ids[flow.id]}"]')

    select = Select(form(color).find_element(By.NAME, "value"))
    assert [o.text for o in select.options] == ["RED", "BLUE"]
    assert form(ok).find_element(By.NAME, "value").get_attribute("type") == "checkbox"
    area = form(point).find_element(By.NAME, "value")
    assert area.tag_name == "textarea"
    browser.save_screenshot(str(artifact("inbox-typed-forms.png")))

    area.send_keys('{"x": 1, "z": 2}')  # not a field of Point: an error, still pending
    form(point).find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_for(
        browser, lambda b: b.find_element(By.CSS_SELECTOR, f'[data-error-for="{ids[point.id]}"]')
    )
    assert "has no field 'z'" in error.text
    area = form(point).find_element(By.NAME, "value")
    area.clear()
    area.send_keys('{"x": 1, "y": 2}')
    form(point).find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-flow-status="done"]'))
    assert point.result() == 3

    browser.get(server + "/inbox")
    Select(form(color).find_element(By.NAME, "value")).select_by_visible_text("BLUE")
    form(color).find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-flow-status="done"]'))
    assert color.result() == "blue"

    browser.get(server + "/inbox")
    form(ok).find_element(By.NAME, "value").click()
    form(ok).find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-flow-status="done"]'))
    assert ok.result() is True
