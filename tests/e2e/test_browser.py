"""The dashboard in a real browser (Debian's headless chromium through selenium): the
daemon with ``[web] listen`` over real polls of the local provider. Skipped when
chromium or its driver is missing, unless ``$MONITOR_TEST_REQUIRE_BROWSER`` is set
(CI installs them and sets it: there every case must run)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MONITOR, Workspace, dos_target, wait_until
from servers import ProviderServer, free_port, model

CHROMIUM = shutil.which("chromium") or "/usr/lib/chromium/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
XSS = "<img src=x onerror=alert(1)>"
SLASHED = "meta-llama/llama-3.3-70b"


@pytest.fixture
def browser() -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        if os.environ.get("MONITOR_TEST_REQUIRE_BROWSER"):
            pytest.fail(f"the browser tests must run here; missing: {', '.join(missing)}")
        pytest.skip(f"browser tests need chromium, chromedriver and selenium: {missing}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("unhandledPromptBehavior", "ignore")  # an alert() would show
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def no_dialog(driver: Any) -> bool:
    """Whether no ``alert()`` opened: a provider's string ran no script."""
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018 - the property raises when there is none
    except NoAlertPresentException:
        return True
    return False


def text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def serving(base: str) -> bool:
    """Whether the web app answers yet (before the browser is sent there)."""
    try:
        with urllib.request.urlopen(base + "/static/style.css", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # it answers (401 without the password)
    except OSError:
        return False


def start_dashboard(
    workspace: Workspace,
    daemon: Callable[..., subprocess.Popen[str]],
    targets: list[dict[str, Any]],
    web: str = "",
    served_by: str = "daemon",
) -> str:
    """The daemon polling ``targets``, and the app on a free port (``web``: more
    ``[web]`` lines), once it answers: its ``host:port``. ``served_by``: "daemon"
    (``[web] listen``) or "monitor web" (a process of its own beside the daemon)."""
    address = f"127.0.0.1:{free_port()}"
    workspace.write_config(targets)
    with workspace.config_path.open("a") as config:
        listen = f'listen = "{address}"' if served_by == "daemon" else ""
        config.write(f"\n[web]\n{listen}\n{web}\n")
    daemon()
    if served_by == "monitor web":
        # the daemon creates the database; "monitor web" reads it, and refuses to start
        # before it exists
        wait_until(lambda: workspace.polls(targets[0]["name"]) >= 1, timeout=30)
        server = subprocess.Popen(
            [MONITOR, "-c", str(workspace.config_path), "web", "--listen", address],
            env={**os.environ, **workspace.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _SERVERS.append(server)
    wait_until(lambda: serving(f"http://{address}"), timeout=30)
    return address


_SERVERS: list[subprocess.Popen[bytes]] = []  # "monitor web" processes, stopped after each test


@pytest.fixture(autouse=True)
def _stop_servers() -> Iterator[None]:
    yield
    while _SERVERS:
        server = _SERVERS.pop()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def screenshot(driver: Any, name: str) -> None:
    """Kept in $MONITOR_SCREENSHOT_DIR when set (docs/ in the repository: the README's
    pictures are taken by this test)."""
    folder = os.environ.get("MONITOR_SCREENSHOT_DIR")
    if folder:
        driver.save_screenshot(str(Path(folder) / name))


@pytest.mark.parametrize("served_by", ["daemon", "monitor web"])
def test_the_dashboard_in_a_browser_follows_the_provider_and_runs_no_provider_script(
    workspace: Workspace,
    provider: ProviderServer,
    daemon: Callable[..., subprocess.Popen[str]],
    browser: Any,
    served_by: str,
) -> None:
    from selenium.webdriver.common.by import By

    address = start_dashboard(
        workspace,
        daemon,
        [
            dos_target(provider, interval=1, watch_fields=["owned_by"]),
            dos_target(provider, name="mirror", interval=1),
        ],
        served_by=served_by,
    )
    base = f"http://{address}"

    def overview_ok() -> bool:
        browser.get(base + "/")
        rows = browser.find_elements(By.CSS_SELECTOR, "main table:first-of-type tbody tr")
        return len(rows) == 2 and all(" ok" in r.text for r in rows)

    wait_until(overview_ok, timeout=30)
    assert "dos-ai" in text(browser) and "mirror" in text(browser)

    provider.models = [*provider.models, model(SLASHED), model(XSS)]  # at the provider

    def on_changes() -> bool:
        browser.get(base + "/changes?target=dos-ai")
        return SLASHED in text(browser)

    wait_until(on_changes, timeout=30)  # after the next poll
    assert XSS in text(browser)  # shown as the text it is ...
    assert no_dialog(browser)  # ... and not run
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []

    browser.get(base + "/")
    wait_until(lambda: browser.get(base + "/") or text(browser).count(SLASHED) == 2)
    assert no_dialog(browser)  # both targets' changes are on the overview
    if served_by == "daemon":  # the README's pictures: one run takes them
        screenshot(browser, "screenshot-overview.png")
    browser.get(base + "/targets/dos-ai")
    assert SLASHED in text(browser) and XSS in text(browser) and no_dialog(browser)
    timeline = browser.find_element(By.XPATH, "//h2[.='Changes']/following-sibling::table[1]")
    assert SLASHED in timeline.text and XSS in timeline.text  # the change on its timeline
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    if served_by == "daemon":
        screenshot(browser, "screenshot-target.png")
    browser.find_element(By.LINK_TEXT, SLASHED).click()  # a model ID with a slash ...
    assert browser.current_url == f"{base}/models/{SLASHED}"  # ... in the path
    assert browser.find_element(By.TAG_NAME, "h1").text == SLASHED
    assert "mirror" in text(browser) and "first seen" in text(browser)

    browser.find_element(By.LINK_TEXT, "Matrix").click()
    box = browser.find_element(By.NAME, "q")
    box.send_keys("META-")  # any case
    box.submit()  # a plain form: no JavaScript needed
    wait_until(lambda: "q=META-" in browser.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == [SLASHED]


def test_the_browser_needs_the_password_when_one_is_set(
    workspace: Workspace,
    provider: ProviderServer,
    daemon: Callable[..., subprocess.Popen[str]],
    browser: Any,
) -> None:
    (workspace.root / "web.password").write_text("s3cret-pass\n")
    base = start_dashboard(
        workspace, daemon, [dos_target(provider, interval=1)], 'password_file = "web.password"'
    )

    browser.get(f"http://{base}/")  # 401: headless chromium shows an empty page
    assert "dos-ai" not in browser.page_source and text(browser) == ""
    browser.get(f"http://monitor:wrong@{base}/")
    assert "dos-ai" not in browser.page_source
    browser.get(f"http://monitor:s3cret-pass@{base}/")
    assert "dos-ai" in text(browser) and "Recent changes" in text(browser)
