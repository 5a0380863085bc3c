"""The real app in a real browser: `streamlit run` + Debian's chromium through Playwright.

The server holds a copy of the committed default model, as a fresh clone does. Analyze: upload a
real photo, see its smiling faces labelled happy. Webcam: chromium's fake camera plays a video made
from a real face photo, START is clicked, and the processed-frame count rises (WebRTC over loopback,
no STUN). Each page's screenshot is saved into docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import time

import cv2
import numpy as np
import pytest
from e2e_helpers import (
    StreamlitServer,
    assert_no_exception,
    file_input,
    launch_chromium,
    open_page,
    runs_dir_with,
    screenshot,
    wait_for_app,
)

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")

PHOTO = "2008_001322.jpg"   # three smiling people; the detector finds the two nearest the camera
VIEWPORT = {"width": 1400, "height": 1500}


def write_y4m(path, image_bgr: np.ndarray, frames: int = 30, size=(640, 480)) -> None:
    """A raw YUV4MPEG2 video (I420) that chromium loops as its fake webcam."""
    w, h = size
    yuv = cv2.cvtColor(cv2.resize(image_bgr, (w, h)), cv2.COLOR_BGR2YUV_I420)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F15:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n")
            f.write(yuv.tobytes())


@pytest.fixture(scope="module")
def server(default_run, tmp_path_factory):
    with StreamlitServer(runs_dir_with(tmp_path_factory.mktemp("e2e_runs"), default_run)) as s:
        yield s


@pytest.fixture(scope="module")
def camera_video(photos, tmp_path_factory):
    path = tmp_path_factory.mktemp("camera") / "face.y4m"
    write_y4m(path, cv2.imread(str(photos / PHOTO)))
    return path


@pytest.fixture(scope="module")
def browser(camera_video):
    with playwright_api.sync_playwright() as p:
        b = launch_chromium(p, [f"--use-file-for-fake-video-capture={camera_video}"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport=VIEWPORT)
    pg = ctx.new_page()
    yield pg
    ctx.close()


def test_home_and_dataset_pages_render(server, page, default_run):
    open_page(page, server.url)
    assert_no_exception(page)
    page.get_by_text("Model in use").wait_for()
    name = json.loads((default_run / "run.json").read_text())["name"]
    assert name in page.locator('[data-testid="stMetric"]').first.inner_text()
    assert page.locator('[data-testid="stPageLink"]').count() == 7
    screenshot(page, "home")

    open_page(page, server.url + "/dataset")       # default path: ../shared/data/fer2013
    page.get_by_text("Class distribution").wait_for(timeout=120_000)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert page.get_by_text("35,736 faces").count() == 1
    screenshot(page, "dataset")


def test_analyze_labels_the_faces_of_an_uploaded_photo(server, page, photos, default_run):
    open_page(page, server.url + "/analyze")
    file_input(page, "Photos").set_input_files(str(photos / PHOTO))
    page.get_by_text(re.compile(r"All faces \(\d+\)")).wait_for(timeout=120_000)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    n = int(re.search(r"All faces \((\d+)\)", page.get_by_text(re.compile(r"All faces \(")).inner_text()).group(1))
    assert n >= 1
    summary = page.locator('[data-testid="stMarkdownContainer"]', has_text=re.compile(r"face\(s\):")).inner_text()
    labels = re.findall(r"\d+: (\w+) \d+%", summary)
    assert len(labels) == n
    classes = json.loads((default_run / "run.json").read_text())["class_names"]
    assert set(labels) <= set(classes), (labels, classes)
    assert labels.count("happy") >= 2, f"the default model should see the two smiles: {summary}"
    table = page.locator('[data-testid="stDataFrame"]')
    assert table.count() == 1
    page.get_by_text("Why? Show where the model looked").click()
    page.get_by_text("Red = the regions").wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "analyze")


def _heatmap(page) -> dict:
    """The Analyze page's faces x emotions heatmap, as plotly holds it in the page."""
    return page.evaluate("""() => { const p = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
                                   return {x: p.data[0].x, y: p.data[0].y, z: p.data[0].z}; }""")


def test_a_crowd_shows_every_class_for_every_face_with_stable_numbers(server, browser, photos, default_run):
    """bald_guys.jpg: one heatmap row per numbered face, every class in every row, and the same numbers for
    the same faces in a second, separate browser session."""
    classes = json.loads((default_run / "run.json").read_text())["class_names"]
    seen = []
    for _ in range(2):
        ctx = browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        open_page(page, server.url + "/analyze")
        file_input(page, "Photos").set_input_files(str(photos / "bald_guys.jpg"))
        page.get_by_text(re.compile(r"All faces \(\d+\)")).wait_for(timeout=120_000)
        page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=60_000)
        wait_for_app(page)
        assert_no_exception(page)
        n = int(re.search(r"All faces \((\d+)\)", page.get_by_text(re.compile(r"All faces \(")).inner_text()).group(1))
        heat = _heatmap(page)
        assert n >= 10 and list(heat["x"]) == classes                 # every class, in the model's order
        assert [str(v) for v in heat["y"]] == [str(i) for i in range(1, n + 1)]
        assert all(len(row) == len(classes) and abs(sum(row) - 1) < 0.02 for row in heat["z"])
        summary = page.locator('[data-testid="stMarkdownContainer"]', has_text=re.compile(r"face\(s\):")).inner_text()
        seen.append((summary, heat["z"]))
        ctx.close()
    assert seen[0][0] == seen[1][0] and seen[0][1] == seen[1][1]     # same numbering, same figures


def test_webcam_processes_the_camera_live(server, page):
    console = []                                 # the WebRTC component logs its connection states here
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    open_page(page, server.url + "/analyze")     # TensorFlow loads first, as when a user starts on Analyze
    open_page(page, server.url + "/webcam")
    assert_no_exception(page)
    player = page.frame_locator('iframe[title*="streamlit_webrtc"]').first
    player.get_by_role("button", name="START").click(timeout=60_000)
    line = page.get_by_text(re.compile(r"Processed frames: \d+"))
    try:
        line.wait_for(timeout=90_000)
    except playwright_api.TimeoutError:          # say what the page, the browser and the server saw
        pytest.fail("no processed frame 90 s after START.\n--- page:\n" + page.inner_text("body")[-1500:]
                    + "\n--- browser console:\n" + "\n".join(console[-40:])
                    + "\n--- server log:\n" + server.log_tail())

    def frames() -> tuple[int, int]:
        m = re.search(r"Processed frames: (\d+) .* faces: (\d+)", line.inner_text())
        return int(m.group(1)), int(m.group(2))

    first, _ = frames()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        later, faces = frames()
        if later > first + 2 and faces >= 1:
            break
        time.sleep(1)
    assert later > first + 2, f"frame count stuck at {first} -> {later}"
    assert faces >= 1, line.inner_text()
    assert re.search(r"emotion: \w+", line.inner_text())
    screenshot(page, "webcam")
    player.get_by_role("button", name="STOP").click()
    assert server.alive(), server.log_tail()


def test_reading_a_big_dataset_can_be_stopped_and_started_again(default_run, photos, browser, tmp_path):
    """20,000 photos (one 640-px JPEG, hard-linked): the Dataset page shows the reading's progress with a Stop
    button that ends it within seconds, keeps nothing half-read, and reads it again on request."""
    big = tmp_path / "data" / "big"
    image = cv2.resize(cv2.imread(str(photos / PHOTO)), (640, 640))
    for cls in ("happy", "sad"):
        (big / cls).mkdir(parents=True)
        cv2.imwrite(str(big / cls / "0.jpg"), image)
        for i in range(1, 10_000):
            os.link(big / cls / "0.jpg", big / cls / f"{i}.jpg")
    runs = runs_dir_with(tmp_path / "runs", default_run)
    with StreamlitServer(runs, env={"FER_DATA_ROOTS": str(tmp_path / "data")}) as srv:
        ctx = browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        open_page(page, srv.url + "/dataset")
        box = page.get_by_role("textbox", name="Dataset path")
        box.fill(str(big))
        box.press("Enter")
        stop = page.get_by_role("button", name="Stop reading")
        stop.wait_for(timeout=60_000)
        page.get_by_text("of 20,000 files").wait_for(timeout=60_000)       # the progress, as it reads
        clicked = time.monotonic()
        stop.click()
        page.get_by_text("was stopped; nothing of it is kept").wait_for(timeout=20_000)
        assert time.monotonic() - clicked < 20
        wait_for_app(page)
        assert_no_exception(page)
        assert page.get_by_text("Class distribution").count() == 0
        page.get_by_role("button", name="Read it").click()
        page.get_by_role("button", name="Stop reading").wait_for(timeout=60_000)   # reading again
        ctx.close()
        assert srv.alive(), srv.log_tail()
