"""Browser tests' plumbing: a real `streamlit run streamlit_app.py` server and Debian's chromium.

Reusable from any browser test module:

    from e2e_helpers import StreamlitServer, launch_chromium, open_page, wait_for_app

    with StreamlitServer(runs_dir) as server:          # FER_RUNS_DIR=runs_dir, a free port
        browser = launch_chromium(playwright)
        page = browser.new_page()
        open_page(page, server.url + "/runs")          # loads and waits until the script is idle

Playwright never downloads a browser here: we always launch /usr/bin/chromium (or $FER_CHROMIUM).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("FER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run streamlit_app.py` in a subprocess, on a free port, its output in a log file."""

    def __init__(self, runs_dir: str | os.PathLike, env: dict | None = None, app: str = "streamlit_app.py",
                 start_timeout: float = 120):
        self.runs_dir = Path(runs_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "FER_RUNS_DIR": str(self.runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
                    **(env or {})}
        self.app = app
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="streamlit-e2e-", suffix=".log")[1])

    def start(self) -> "StreamlitServer":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", self.app, "--server.headless=true",
             f"--server.port={self.port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
             "--server.fileWatcherType=none", "--server.runOnSave=false"],
            cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"streamlit did not answer within {self.start_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def runs_dir_with(tmp_dir: Path, *run_dirs: Path) -> Path:
    """A runs folder holding copies of the given runs (so tests never touch each other's runs)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    for r in run_dirs:
        shutil.copytree(r, tmp_dir / Path(r).name, dirs_exist_ok=True)
    return tmp_dir


def launch_chromium(playwright, extra_args: list[str] | None = None):
    """Debian's chromium through Playwright (never a downloaded one); skip when it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (set FER_CHROMIUM)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(extra_args or []))


def wait_for_app(page, timeout_ms: int = 120_000) -> None:
    """Until Streamlit has drawn the page and its script has stayed idle for about a second.

    While a script runs, Streamlit shows its status widget ("Running..."); it is absent when idle.
    """
    page.wait_for_selector('[data-testid="stMain"]', timeout=timeout_ms)
    status = page.locator('[data-testid="stStatusWidget"]')
    deadline = time.monotonic() + timeout_ms / 1000
    idle = 0
    while time.monotonic() < deadline:
        idle = idle + 1 if status.count() == 0 else 0
        if idle >= 4:
            return
        time.sleep(0.3)
    raise TimeoutError("the Streamlit script was still running after the timeout")


def open_page(page, url: str, timeout_ms: int = 120_000) -> None:
    page.goto(url, timeout=timeout_ms)
    wait_for_app(page, timeout_ms)


def file_input(page, label: str):
    """The file input of the uploader labelled LABEL: a page may hold several uploaders (Analyze has its
    own, 'Photos of one person' and 'Import a profile file'), so a test names the one a user would use."""
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has=page.get_by_text(label, exact=True))
    return uploader.locator('input[type="file"]')


def assert_no_exception(page) -> None:
    """A Python exception shown by Streamlit is a failure, whatever else is on the page."""
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot into docs/screenshots/NAME.png (kept in git as documentation)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30_000)
    time.sleep(1)   # images fade in
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
