"""The live view in a real headless browser (Debian's chromium through chromium-driver): a person enters the
read token once and watches a promotion move from component to component, the page refreshing itself.

The whole product runs (tests/support/stack.py): the simulator's tasks are slowed so that each component
deploys for a few seconds, and the test only reads the page, never reloads it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from simulator.seed import ORCHESTRATION_2021_3_RELEASE_ID, SPACE_ID, STAGING_ID
from tests.support.stack import Stack, running_stack, wait_for
from tests.support.tokens import READ_TOKEN
from workers.keys import RedisKeys

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]
PROMOTION = {"release_pattern": "{parent:3}.*", "promotion": {"task_check_seconds": 1}}
# What the promotion's rows read, component by component, as the page saw them at one moment.
Rows = tuple[tuple[str, str], ...]
ROWS_SCRIPT = """
const plan = document.querySelector('section[data-kind="promotion"]');
if (!plan) { return null; }
const rows = Array.from(
  plan.querySelectorAll('tr[data-component]'), (row) => [row.dataset.component, row.dataset.state]
);
return [plan.dataset.status, rows];
"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"the live view's browser test needs Debian's chromium and chromium-driver, and {', '.join(missing)} "
            "is missing: run `apt-get install -y chromium chromium-driver` (bash scripts/setup does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    # The driver is named, so Selenium looks for nothing to download.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def stack(redis_url: str, keys: RedisKeys, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, keys, tmp_path, orchestration=PROMOTION) as running:
        yield running


def test_the_page_shows_a_promotion_moving_from_component_to_component(stack: Stack, browser: WebDriver) -> None:
    browser.get(f"{stack.intake_url}/?refresh=1")
    wait_for("the token form", lambda: browser.find_element(By.ID, "token-form").is_displayed(), timeout=30)
    enter_token(browser, "not-the-read-token-0123")
    wait_for("the refusal", lambda: "refused" in browser.find_element(By.ID, "notice").text)
    assert browser.find_element(By.ID, "token-form").is_displayed()
    enter_token(browser, READ_TOKEN)
    wait_for("the status", lambda: "No promotion or redeploy yet." in browser.find_element(By.ID, "plans").text)
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    browser.execute_script("window.sameLiveView = true;")  # gone, should anything reload the page

    with stack.admin as admin:
        assert admin.put("/_simulator/clock", json={"StepDurationSeconds": 2}).status_code == 200
        created = admin.post(
            f"/api/{SPACE_ID}/deployments",
            json={"ReleaseId": ORCHESTRATION_2021_3_RELEASE_ID, "EnvironmentId": STAGING_ID},
        )
    assert created.status_code == 201, created.text
    parent: dict[str, Any] = created.json()

    seen = watch_until_finished(browser, stack)

    status, final = seen[-1]
    assert status == "succeeded", seen
    assert final == (
        ("Database", "succeeded"),
        ("Web API", "succeeded"),
        ("Scheduling Service", "skipped"),
        ("Web UI", "succeeded"),
    )
    # Each component was seen deploying, one at a time, in order, with the ones before it done.
    deploying = [next((c for c, state in rows if state == "deploying"), None) for _, rows in seen]
    assert [c for i, c in enumerate(deploying) if c and c not in deploying[:i]] == ["Database", "Web API", "Web UI"]
    for _, rows in seen:
        states = dict(rows)
        if states["Web API"] == "deploying":
            assert states["Database"] == "succeeded", rows
        if states["Web UI"] == "deploying":
            assert (states["Web API"], states["Scheduling Service"]) == ("succeeded", "skipped"), rows
    assert browser.execute_script("return window.sameLiveView === true;"), "the page was reloaded"
    assert READ_TOKEN not in browser.current_url
    # The page names each component's deployment and task, as the plan in Redis has them.
    plan = stack.plans.load(f"promotion-{parent['Id']}")
    assert plan is not None
    text = browser.find_element(By.CSS_SELECTOR, f'section[data-plan="{plan.id}"]').text
    assert "Release Orchestration 2021.3.0.1 → Staging" in text
    for step in plan.steps:
        if step.deployment_id:
            assert step.deployment_id in text
            assert str(step.task_id) in text


def enter_token(browser: WebDriver, token: str) -> None:
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#token-form button").click()


def watch_until_finished(browser: WebDriver, stack: Stack, *, timeout: float = 180) -> list[tuple[str, Rows]]:
    """Every distinct picture of the promotion the page showed, until it showed the promotion finished."""
    seen: list[tuple[str, Rows]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = browser.execute_script(ROWS_SCRIPT)
        if found is not None:
            picture = (str(found[0]), tuple((str(c), str(s)) for c, s in found[1]))
            if not seen or seen[-1] != picture:
                seen.append(picture)
            if picture[0] in ("succeeded", "failed"):
                return seen
        time.sleep(0.1)
    log = stack.log_path.read_text()[-4000:] if stack.log_path.exists() else ""
    raise AssertionError(f"the page did not show the promotion finished within {timeout} s: {seen}\n{log}")
