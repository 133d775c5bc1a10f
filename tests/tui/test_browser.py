"""`dltui serve` in a real headless browser: the system's Chromium, driven by Playwright
(which uses that binary; it never downloads one). The page loads, the Setup view renders,
keys reach the app: `r` trains a short run that the Charts view follows to the end, the
Samples tab's number key shows the sampler.

The screen is read from xterm.js's own buffer: textual-serve draws with WebGL, so the
text is nowhere in the DOM. An init script catches the page's terminal object as the
page assigns it. Skipped where Chromium or Playwright is missing, except in CI (CI set),
which installs both.
Set DLTUI_SCREENSHOT_DIR to keep the screenshot (the README's comes from here).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WAIT_MS = 60_000  # bounds every wait for the page; a healthy run needs a few seconds
# resolved now: tests run in their own tmp directory
SHOT_DIR = Path(os.environ["DLTUI_SCREENSHOT_DIR"]).resolve() if os.environ.get("DLTUI_SCREENSHOT_DIR") else None

# textual-serve's script does `this.terminal = new Terminal(...)` on its page object: a
# setter on Object.prototype sees that first assignment, keeps the terminal, and then gets
# out of the way by defining the property on the object itself.
CATCH_TERMINAL = """
window.__terminals = [];
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer && value.write) window.__terminals.push(value);
  },
});
"""
SCREEN_TEXT = """() => {
  const term = window.__terminals[0];
  if (!term) return "";
  const buffer = term.buffer.active, rows = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
}"""


@pytest.fixture
def chromium() -> str:
    found = os.environ.get("DLTUI_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if not found:
        if os.environ.get("CI"):  # .ci/run installs it: a skip there would hide a broken browser path
            pytest.fail("no Chromium on the CI machine (.ci/run installs it with apt-get)")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    return found


@pytest.fixture
def sync_api():
    if os.environ.get("CI"):
        from playwright import sync_api  # a dev extra: CI has it

        return sync_api
    return pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture
def served(tmp_path):
    """`dltui serve` on a free port, in its own process group, so that nothing it started
    (an app per connection, their training) outlives the test."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    argv = [sys.executable, "-m", "dltui", "serve", "--port", str(port), "--epochs", "3", "--out", "run"]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(300):  # the server answers within a second or two
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                pytest.fail(f"dltui serve exited {proc.returncode}: {(tmp_path / 'serve.log').read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/", tmp_path / "serve.log", proc
    finally:
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=grace)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()


def test_the_app_runs_in_a_browser(chromium, sync_api, served, tmp_path):
    url, server_log, server = served

    def screen() -> str:
        return page.evaluate(SCREEN_TEXT)

    def wait_for_screen(*needles: str) -> None:
        check = f"() => {{ const s = ({SCREEN_TEXT})(); return {' && '.join(f's.includes({n!r})' for n in needles)}; }}"
        try:
            page.wait_for_function(check, timeout=WAIT_MS)
        except sync_api.TimeoutError:
            pytest.fail(f"never saw {needles} on screen:\n{screen()}\n--- server log:\n{server_log.read_text()}")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 790})
            page.add_init_script(CATCH_TERMINAL)
            page.goto(url, wait_until="domcontentloaded")  # the page's web font is offline here: don't wait on it

            wait_for_screen("Setup", "learning rate", "Start (r)")  # the Setup view, in the browser
            wait_for_screen("ready")  # torch loaded, the models listed: `r` can start
            page.focus(".xterm-helper-textarea")  # xterm's key input, without clicking into the form
            page.keyboard.press("r")
            wait_for_screen("finished", "accuracy %", "epoch")  # the run went to the end, drawn in Charts
            assert "learning rate" not in screen()
            samples = re.search(r"(\d) Samples", screen())  # the tab's key, as the tab bar says
            assert samples, screen()
            page.keyboard.press(samples.group(1))
            wait_for_screen("seeded sample of 359 test items")  # the sampler's digits, in half blocks
            page.wait_for_timeout(300)  # let the last frame paint before the picture
            shot = tmp_path / "screenshot-browser.png"
            page.screenshot(path=str(shot))
            if SHOT_DIR is not None:
                shutil.copy(shot, SHOT_DIR / shot.name)

            # Ctrl+C on the server, the tab still open: the tab's app quits and the server exits
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=30) == 0, server_log.read_text()  # aiohttp alone would wait 60 s
            page.wait_for_selector("body.-closed", state="attached", timeout=WAIT_MS)  # "Session ended."
        finally:
            browser.close()
    for _ in range(300):  # the app processes follow within moments
        if not _group_alive(server.pid):
            break
        time.sleep(0.1)
    assert not _group_alive(server.pid), "an app process outlived `dltui serve`"
    assert (tmp_path / "run" / "summary.json").exists()  # the served app wrote the usual run directory
