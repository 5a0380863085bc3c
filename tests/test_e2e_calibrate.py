"""Calibrate to me, end to end in real Chromium: the fake camera plays one twface performer's expressions.

The camera file (written to a temporary folder, never committed) holds each emotion's photo for a few seconds,
in the order the capture asks for them, neutral first and longest (the WebRTC connection takes a moment after
START, and the video starts with the camera). The capture's guard that a new emotion's first shot must look
different from the last emotion's shots is what keeps it in step with the video: after each emotion it waits
for the next photo, as it waits for a person to change their face. Then the profile is saved under a name,
and the live labels, read with the profile, must walk through the emotions in the video's order.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SHARED, need
from e2e_helpers import StreamlitServer, assert_no_exception, launch_chromium, open_page, runs_dir_with, screenshot

from fer_core.profiles.capture import capture_order

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")

# A performer whose successive expressions differ clearly (the capture's change guard then sees each new photo
# at once) and whose seven photos the model reads apart once calibrated on them.
PERFORMER = "24"
FPS, FIRST_S, HOLD_S = 8, 7, 5          # the video: 8 frames/s, neutral for 7 s, every other emotion for 5 s
SIZE = (320, 240)
VIEWPORT = {"width": 1400, "height": 1700}
PROFILE = "twface 24"


def performer_frames(classes: list[str]) -> dict[str, np.ndarray]:
    """emotion -> a 320x240 frame: the performer's first photo of it that the database's raters agreed on."""
    twface = need(SHARED / "twface")
    labels = pd.read_csv(twface / "labels.csv", dtype={"person": str})
    mine = labels[(labels.person == PERFORMER) & ((labels.emotion == "neutral") | (labels.raters_agree == 1))]
    frames = {}
    for emotion in classes:
        photo = cv2.imread(str(twface / mine[mine.emotion == emotion].image.iloc[0]))
        frame = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
        frame[20:220, 60:260] = cv2.resize(photo, (200, 200))
        frames[emotion] = frame
    return frames


def write_video(path, frames: dict[str, np.ndarray], order: list[str]) -> None:
    """A raw YUV4MPEG2 video (I420): each emotion's frame held in `order`; Chromium loops it as its camera."""
    w, h = SIZE
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for i, emotion in enumerate(order):
            yuv = cv2.cvtColor(frames[emotion], cv2.COLOR_BGR2YUV_I420).tobytes()
            for _ in range((FIRST_S if i == 0 else HOLD_S) * FPS):
                f.write(b"FRAME\n" + yuv)


@pytest.fixture(scope="module")
def classes(default_run) -> list[str]:
    return json.loads((default_run / "run.json").read_text())["class_names"]


@pytest.fixture(scope="module")
def frames(classes):
    return performer_frames(classes)


@pytest.fixture(scope="module")
def profiles_dir(tmp_path_factory):
    """The app's own profiles/ folder where this checkout has none (CI's clean clone), removed afterwards, so the
    screenshot shows the storage note a user reads rather than a temporary path; else a temporary folder (a
    developer's own profiles are never touched)."""
    own = REPO / "profiles"
    if own.exists():
        yield tmp_path_factory.mktemp("profiles")
        return
    own.mkdir()
    try:
        yield own
    finally:
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="module")
def server(default_run, profiles_dir, tmp_path_factory):
    runs = runs_dir_with(tmp_path_factory.mktemp("e2e_runs"), default_run)
    with StreamlitServer(runs, env={"FER_PROFILES_DIR": str(profiles_dir)}) as s:
        yield s


@pytest.fixture(scope="module")
def page(frames, classes, tmp_path_factory):
    video = tmp_path_factory.mktemp("camera") / "performer.y4m"
    write_video(video, frames, capture_order(classes))
    with playwright_api.sync_playwright() as p:
        browser = launch_chromium(p, [f"--use-file-for-fake-video-capture={video}"])
        ctx = browser.new_context(viewport=VIEWPORT)
        yield ctx.new_page()
        browser.close()


def fail_with_context(page, server, what: str):
    pytest.fail(f"{what}\n--- page:\n{page.inner_text('body')[-2000:]}\n--- server log:\n{server.log_tail()}")


def wait_for_text(page, server, pattern: str, timeout_s: float, what: str):
    try:
        page.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout_s * 1000)
    except playwright_api.TimeoutError:
        fail_with_context(page, server, what)


def test_calibrate_to_me_then_the_live_labels_follow_the_profile(server, page, frames, classes, profiles_dir):
    open_page(page, server.url + "/webcam")
    assert_no_exception(page)
    wait_for_text(page, server, "Profiles are stored on the machine", 180, "no profile picker on the Webcam page")
    assert "Nothing leaves this machine" in page.inner_text("body")
    page.get_by_text("Calibrate to me").first.click()
    countdown = page.locator('[data-testid="stSlider"]', has_text="Countdown").get_by_role("slider")
    countdown.focus()
    for _ in range(2):                    # 3 s -> 1 s: the video holds each face 4 s
        page.keyboard.press("ArrowLeft")
    page.get_by_role("button", name="Start calibrating").click()
    wait_for_text(page, server, r"Show neutral", 60, "no prompt after Start calibrating")

    player = page.frame_locator('iframe[title*="streamlit_webrtc"]').first
    player.get_by_role("button", name="START").click(timeout=60_000)
    wait_for_text(page, server, r"Show sad", 90, "the capture did not reach sad")
    assert_no_exception(page)
    screenshot(page, "calibrate")
    wait_for_text(page, server, r"All shots taken", 60, "the capture did not finish")
    assert_no_exception(page)
    body = page.inner_text("body")
    assert all(re.search(rf"{e}\s*3/3", body) for e in classes), body[-1500:]

    page.get_by_label("Name of this profile").fill(PROFILE)
    page.get_by_role("button", name="Save profile").click()
    wait_for_text(page, server, "saved; the live labels now read your face with it", 60, "the profile was not saved")
    saved = json.loads((profiles_dir / f"{PROFILE}.json").read_text())
    assert saved["shots"] == {c: 3 for c in classes} and set(saved["prototypes"]) == set(classes)

    line = page.get_by_text(re.compile(r"Processed frames: \d+"))
    wait_for_text(page, server, rf"profile: {PROFILE}", 60, "the live labels do not say the profile is in use")
    labels, texts = [], []                # the live label, every ~0.2 s for one loop of the video and more
    deadline = time.monotonic() + FIRST_S + HOLD_S * (len(classes) - 1) + 6
    while time.monotonic() < deadline:
        text = line.inner_text()
        m = re.search(r"emotion: (\w+)", text)
        if m:
            labels.append(m.group(1))
            texts.append(text)
        time.sleep(0.2)
    assert all(f"(profile: {PROFILE})" in t for t in texts), texts[-5:]
    # The video walks through the emotions in the capture's order; read with the profile, the labels must walk
    # with it: the labels held for a second or more, in turn, are each the next emotion in that order.
    held = [e for e, run in itertools.groupby(labels) if len(list(run)) >= 5]
    walk = [e for e, _ in itertools.groupby(held)]
    order = capture_order(classes)
    steps = [(order.index(b) - order.index(a)) % len(order) for a, b in zip(walk, walk[1:])]
    assert len(set(walk)) >= len(classes) - 1, (walk, labels)          # nearly every photo read as its own emotion
    # in order: every step but two goes to the next emotion (a loaded machine can hold one misread for a second,
    # which costs two steps: into it and out of it)
    assert steps.count(1) >= len(steps) - 2, (walk, labels)
    assert server.alive(), server.log_tail()
