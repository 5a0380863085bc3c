"""The Video page in a real browser: upload a short video made here from a real photo, watch it analysed,
then see the annotated video, the emotion timeline and both downloads (whose contents are checked)."""

from __future__ import annotations

import csv
import io
import re

import cv2
import numpy as np
import pytest
from e2e_helpers import (StreamlitServer, assert_no_exception, file_input, launch_chromium, open_page, runs_dir_with,
                         wait_for_app)

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")


def write_mp4(path, image_bgr: np.ndarray, frames: int = 24, fps: int = 8) -> None:
    """An H.264 mp4 (PyAV) of the photo drifting sideways, as a handheld recording does."""
    import av
    img = cv2.resize(image_bgr, (640, 480))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(frames):
            frame = cv2.warpAffine(img, np.float32([[1, 0, 2 * i], [0, 1, 0]]), (640, 480),
                                   borderMode=cv2.BORDER_REPLICATE)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_video_upload_shows_the_timeline_and_both_downloads(default_run, photos, tmp_path):
    video = tmp_path / "three-people.mp4"
    write_mp4(video, cv2.imread(str(photos / "2008_001322.jpg")))
    with StreamlitServer(runs_dir_with(tmp_path / "runs", default_run)) as server, \
            playwright_api.sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_context(viewport={"width": 1400, "height": 1400}, accept_downloads=True).new_page()
        open_page(page, server.url + "/video")
        file_input(page, "Video").set_input_files(str(video))
        page.get_by_text(re.compile(r"face\(s\) followed")).wait_for(timeout=180_000)
        page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=60_000)
        wait_for_app(page)
        assert_no_exception(page)
        summary = page.get_by_text(re.compile(r"face\(s\) followed")).inner_text()
        assert re.search(r"24 frames, 24 analysed, [1-9]\d* face\(s\) followed", summary), summary
        assert "emotion probabilities over time" in page.locator('[data-testid="stPlotlyChart"]').inner_text()
        assert page.locator("video").count() == 1

        with page.expect_download() as dl:
            page.get_by_role("button", name="Download per-frame CSV").click()
        rows = list(csv.DictReader(io.StringIO(open(dl.value.path()).read())))
        assert {int(r["frame"]) for r in rows} == set(range(24))
        assert len({r["face_id"] for r in rows}) <= 4          # the same few faces, followed, not renumbered
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download annotated video").click()
        cap = cv2.VideoCapture(dl.value.path())
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 24 and cap.read()[0]
        browser.close()


def test_a_file_that_is_not_a_video_gets_a_clear_message(default_run, tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_bytes(b"this is not a video" * 100)
    with StreamlitServer(runs_dir_with(tmp_path / "runs", default_run)) as server, \
            playwright_api.sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        open_page(page, server.url + "/video")
        file_input(page, "Video").set_input_files(str(fake))
        page.get_by_text("could not be read as a video").wait_for(timeout=120_000)
        assert_no_exception(page)
        browser.close()
