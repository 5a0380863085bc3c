"""Load: 8 browser sessions upload photos to the Analyze page at once while a training run is active.

Each session reloads /analyze, uploads a real photo and checks the faces and labels it shows against
fer_core's own answer for that photo, over and over for FER_LOAD_SECONDS (CI: 25 s; the README's
figures come from FER_LOAD_SECONDS=60). The server's memory is sampled throughout. Figures are printed:

    FER_LOAD_SECONDS=60 python -m pytest -s tests/test_e2e_load.py
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO
from e2e_helpers import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, file_input, runs_dir_with

pytestmark = pytest.mark.browser

playwright_async = pytest.importorskip("playwright.async_api")

SESSIONS = 8
SECONDS = float(os.environ.get("FER_LOAD_SECONDS", "25"))
PHOTOS = ("2008_001322.jpg", "2009_004587.jpg")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (Streamlit runs in one process)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def expected_labels(run_dir: Path, photos: Path, names=PHOTOS) -> dict[str, list[str]]:
    """What fer_core itself says for each photo (the page must show the same)."""
    from fer_core.data.images import decode_image
    from fer_core.serve.recognizer import EmotionRecognizer
    rec = EmotionRecognizer.from_run(run_dir)
    out = {}
    for name in names:
        faces = rec.analyze(decode_image((photos / name).read_bytes()))
        assert faces, f"the detector should find faces in {name}"
        out[name] = [f.emotion for f in faces]
    return out


async def one_session(browser, url: str, photos: Path, expected: dict, deadline: float, sid: int) -> dict:
    names = list(expected)
    ctx = await browser.new_context(viewport={"width": 1200, "height": 1000})
    page = await ctx.new_page()
    rounds, latencies, problems, first_done = 0, [], [], None
    try:
        while time.monotonic() < deadline:
            name = names[(sid + rounds) % len(names)]
            t0 = time.monotonic()
            await page.goto(url + "/analyze", timeout=120_000)
            await file_input(page, "Photos").set_input_files(str(photos / name), timeout=120_000)
            await page.get_by_text(re.compile(r"All faces \(\d+\)")).wait_for(timeout=180_000)
            summary = await page.locator('[data-testid="stMarkdownContainer"]',
                                         has_text=re.compile(r"face\(s\):")).first.inner_text()
            labels = re.findall(r"\d+: (\w+) \d+%", summary)
            if labels != expected[name]:
                problems.append(f"session {sid} {name}: page {labels}, fer_core {expected[name]}")
            if await page.locator('[data-testid="stException"]').count():
                problems.append(f"session {sid}: an exception on the page")
            latencies.append(time.monotonic() - t0)
            rounds += 1
            first_done = first_done or time.monotonic()
    finally:
        await ctx.close()
    return {"rounds": rounds, "latencies": latencies, "problems": problems, "first_done": first_done}


async def drive(url: str, photos: Path, expected: dict, seconds: float, sessions: int = SESSIONS) -> list[dict]:
    async with playwright_async.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        deadline = time.monotonic() + seconds
        try:
            return await asyncio.gather(*[one_session(browser, url, photos, expected, deadline, i)
                                          for i in range(sessions)])
        finally:
            await browser.close()


def test_eight_sessions_upload_photos_while_a_run_trains(tiny_run, photos, ckplus, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM}")
    runs = runs_dir_with(tmp_path / "runs", tiny_run)
    expected = expected_labels(tiny_run, photos)
    bg_dir = runs / "load-background-run"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "fer_core", "train", "--data", str(ckplus), "--backbone", "custom_cnn",
         "--input-size", "32", "--epochs", "1000", "--max-samples", "320", "--early-stopping", "0",
         "--run-dir", str(bg_dir)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        with StreamlitServer(runs) as server:
            samples, stop = [], threading.Event()

            def sample():
                while not stop.wait(1.0):
                    samples.append((time.monotonic(), rss_mb(server.proc.pid)))
            threading.Thread(target=sample, daemon=True).start()
            start_mb = rss_mb(server.proc.pid)
            # warm-up: TensorFlow and the model load once
            asyncio.run(drive(server.url, photos, expected, 0, sessions=1))
            t0 = time.monotonic()
            results = asyncio.run(drive(server.url, photos, expected, SECONDS))
            wall = time.monotonic() - t0
            stop.set()
            end_mb = rss_mb(server.proc.pid)
            assert server.alive(), server.log_tail()
            log = server.log_tail(20000)
        assert trainer.poll() is None, "the background training run died during the load"
        info = json.loads((bg_dir / "run.json").read_text())
        assert info["status"] == "running" and info.get("epochs_done", 0) >= 1
    finally:
        (bg_dir / "CANCEL").touch()
        try:
            trainer.wait(timeout=120)
        except subprocess.TimeoutExpired:
            trainer.kill()

    problems = [p for r in results for p in r["problems"]]
    lat = sorted(x for r in results for x in r["latencies"])
    rounds = sum(r["rounds"] for r in results)
    report = {"sessions": SESSIONS, "seconds": round(wall, 1), "uploads analysed": rounds,
              "per session": [r["rounds"] for r in results],
              "latency p50 s": round(statistics.median(lat), 2) if lat else None,
              "latency p95 s": round(lat[int(0.95 * (len(lat) - 1))], 2) if lat else None,
              "server RSS MB start/peak/end": [round(start_mb), round(max([m for _, m in samples] or [end_mb])),
                                               round(end_mb)],
              "cpu cores": os.cpu_count()}
    # warm: once every session has had its first photo analysed (TensorFlow and the model are loaded by then)
    warm_at = max((r["first_done"] or 0) for r in results)
    warm = next((m for t, m in samples if t >= warm_at), end_mb)
    report["growth after warm-up MB"] = round(end_mb - warm)
    print("\nload test:", json.dumps(report))
    assert not problems, problems[:5]
    assert all(r["rounds"] >= 1 for r in results), report   # every session was served
    assert "Traceback" not in log, log[-3000:]
    assert end_mb - warm < 400, report                                 # bounded: uploads do not pile up


def test_eight_sessions_upload_to_the_committed_default_model(photos, tmp_path):
    """The default model runs on its LiteRT export (model.tflite), whose interpreters every session shares:
    eight sessions upload different photos at once; each page shows its own photo's answer, and no error."""
    from fer_core.runs import defaults
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM}")
    if not (defaults.DEFAULT_RUN / "model.tflite").is_file():
        pytest.skip(f"no model.tflite in {defaults.DEFAULT_RUN}")
    runs = runs_dir_with(tmp_path / "runs", defaults.DEFAULT_RUN)
    names = sorted(p.name for p in photos.glob("*.jpg") if p.name != "dogs.jpg")[:SESSIONS]
    expected = expected_labels(defaults.DEFAULT_RUN, photos, names)
    with StreamlitServer(runs) as server:
        asyncio.run(drive(server.url, photos, {names[0]: expected[names[0]]}, 0, sessions=1))   # warm-up
        results = asyncio.run(drive(server.url, photos, expected, SECONDS))
        assert server.alive(), server.log_tail()
        log = server.log_tail(20000)
    problems = [p for r in results for p in r["problems"]]
    print("\nload test, default model:", json.dumps({"sessions": SESSIONS, "uploads analysed":
                                                    sum(r["rounds"] for r in results), "problems": len(problems)}))
    assert not problems, problems[:5]
    assert all(r["rounds"] >= 1 for r in results)
    assert "Traceback" not in log and "RuntimeError" not in log, log[-3000:]
