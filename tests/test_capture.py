"""The guided calibration's capture: the order it asks for emotions, when it shoots, counting, retake.

Frames are real twface photos of one performer (one per emotion, on a gray 320x240 canvas, the face at
a known box), fed with explicit timestamps as the webcam callback feeds them.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, need

from fer_core.profiles.capture import CaptureSettings, GuidedCapture, capture_order, crop_with_margin

pytestmark = pytest.mark.unit

MODEL_CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
BOX = (80, 40, 160, 160)            # where the face photo sits on the canvas
FAST = CaptureSettings(shots=3, countdown_s=1.0, steady_frames=3, shot_gap_s=0.2, change_wait_s=2.0)
DT = 0.1                            # 10 frames/s


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    """emotion -> a 320x240 frame of performer 01 showing it."""
    twface = need(SHARED / "twface")
    labels = pd.read_csv(twface / "labels.csv", dtype={"person": str})
    out = {}
    for emotion in MODEL_CLASSES:
        row = labels[(labels.person == "01") & (labels.emotion == emotion)].iloc[0]
        frame = np.full((240, 320, 3), 128, np.uint8)
        x, y, w, h = BOX
        frame[y:y + h, x:x + w] = cv2.resize(cv2.imread(str(twface / row.image)), (w, h))
        out[emotion] = frame
    return out


def feed_for(capture, t, seconds, frame, box=BOX):
    """Feed the same frame for `seconds` from time t; returns (the time after, shots taken)."""
    taken = 0
    for _ in range(int(round(seconds / DT))):
        taken += capture.feed(t, frame, [box] if box else [])
        t += DT
    return t, taken


def test_neutral_comes_first_then_the_models_own_order():
    assert capture_order(MODEL_CLASSES) == ["neutral", "angry", "disgust", "fear", "happy", "sad", "surprise"]
    assert capture_order(["Happy", "Neutral", "Sadness"]) == ["Neutral", "Happy", "Sadness"]
    assert capture_order(["happy", "sad"]) == ["happy", "sad"]       # a model without neutral keeps its order


def test_no_shot_during_the_countdown_then_k_shots_of_a_steady_face(frames):
    cap = GuidedCapture(MODEL_CLASSES, FAST)
    state = cap.snapshot()
    assert (state.emotion, state.phase, state.prompt) == ("neutral", "countdown", "Show neutral")
    t, taken = feed_for(cap, 0.0, 0.95, frames["neutral"])
    assert taken == 0 and cap.snapshot().countdown_left > 0
    t, taken = feed_for(cap, t, 1.0, frames["neutral"])
    state = cap.snapshot()
    assert taken == 3 and state.counts["neutral"] == 3 and len(state.crops["neutral"]) == 3
    assert state.emotion == "angry" and state.phase == "countdown"       # on to the next emotion's prompt
    crop = state.crops["neutral"][0]
    assert crop.dtype == np.uint8 and crop.shape[0] > BOX[3] and crop.shape[2] == 3   # the face with a margin


def test_a_moving_face_or_no_face_is_never_shot(frames):
    cap = GuidedCapture(MODEL_CLASSES, FAST)
    t, _ = feed_for(cap, 0.0, 1.0, frames["neutral"])
    taken = 0
    for i in range(30):                       # the box jumps 40 px (a quarter of the face) every frame
        x, y, w, h = BOX
        taken += cap.feed(t, frames["neutral"], [(x + 40 * (i % 2), y, w, h)])
        t += DT
    assert taken == 0 and cap.snapshot().status.startswith("Hold still")
    t, taken = feed_for(cap, t, 2.0, frames["neutral"], box=None)
    assert taken == 0 and cap.snapshot().status.startswith("No face")
    t, taken = feed_for(cap, t, 1.0, frames["neutral"])
    assert taken == 3


def test_the_largest_face_is_the_one_shot(frames):
    cap = GuidedCapture(MODEL_CLASSES, FAST)
    small = (5, 5, 40, 40)
    t = 0.0
    while not cap.snapshot().counts["neutral"] and t < 10:
        cap.feed(t, frames["neutral"], [small, BOX])
        t += DT
    crop = cap.snapshot().crops["neutral"][0]
    assert crop.shape[0] > 150                # the big face with its margin, not the 40-px one


def test_shots_are_spaced_by_the_gap(frames):
    cap = GuidedCapture(MODEL_CLASSES, CaptureSettings(shots=3, countdown_s=0, steady_frames=1, shot_gap_s=1.0))
    t, taken = feed_for(cap, 0.0, 1.5, frames["neutral"])
    assert taken == 2                          # at 0.0 and 1.0 s; the third waits for 2.0 s


def test_a_new_emotion_waits_for_the_face_to_change_unless_held_long(frames):
    cap = GuidedCapture(MODEL_CLASSES, FAST)
    t, _ = feed_for(cap, 0.0, 2.0, frames["neutral"])
    assert cap.snapshot().emotion == "angry"
    t, taken = feed_for(cap, t, 2.5, frames["neutral"])          # countdown over, but still the neutral face
    assert taken == 0 and "still looks like your neutral" in cap.snapshot().status
    t, taken = feed_for(cap, t, 1.0, frames["angry"])
    assert taken == 3 and cap.snapshot().emotion == "disgust"
    # someone whose disgust looks like their anger: after change_wait_s the shots are taken anyway
    t, taken = feed_for(cap, t, FAST.countdown_s + FAST.change_wait_s + 1.0, frames["angry"])
    assert taken == 3 and cap.snapshot().emotion == "fear"


def follow_prompts(capture, frames, t=0.0) -> tuple[float, list[str]]:
    """A cooperative sitter: each frame shows the emotion the capture asks for now. -> (time, prompts seen)."""
    asked = []
    while not capture.snapshot().done and t < 100:
        emotion = capture.snapshot().emotion
        if not asked or asked[-1] != emotion:
            asked.append(emotion)
        capture.feed(t, frames[emotion], [BOX])
        t += DT
    return t, asked


def test_a_full_pass_in_order_then_retake_one_emotion(frames):
    cap = GuidedCapture(MODEL_CLASSES, FAST)
    t, asked = follow_prompts(cap, frames)
    assert asked == capture_order(MODEL_CLASSES)
    assert t < 7 * 2.5                         # countdown, steadiness and three shots: under 2.5 s an emotion
    state = cap.snapshot()
    assert state.phase == "done" and all(n == 3 for n in state.counts.values())
    assert {e: len(v) for e, v in cap.shots().items()} == {e: 3 for e in MODEL_CLASSES}
    version = state.version

    cap.retake("fear")
    state = cap.snapshot()
    assert state.emotion == "fear" and state.counts["fear"] == 0 and state.version != version
    assert "fear" not in cap.shots() and not state.done
    t, _ = feed_for(cap, t, 2.0, frames["fear"])
    state = cap.snapshot()
    assert state.done and state.counts["fear"] == 3
    # the shots of each emotion are that emotion's frames: its crop matches its own photo best
    for emotion, crops in cap.shots().items():
        d = {e: np.abs(crops[0].astype(int) - crop_with_margin(f, BOX, FAST.margin).astype(int)).mean()
             for e, f in frames.items()}
        assert min(d, key=d.get) == emotion


def test_retake_in_the_middle_comes_next_then_the_pass_goes_on(frames):
    cap = GuidedCapture(MODEL_CLASSES, FAST)
    t, _ = feed_for(cap, 0.0, 2.0, frames["neutral"])
    t, _ = feed_for(cap, t, 2.0, frames["angry"])
    assert cap.snapshot().emotion == "disgust"
    cap.retake("neutral")
    assert cap.snapshot().emotion == "neutral" and cap.snapshot().countdown_left == FAST.countdown_s
    t, _ = feed_for(cap, t, 2.0, frames["neutral"])
    assert cap.snapshot().emotion == "disgust" and cap.snapshot().counts["angry"] == 3
    with pytest.raises(ValueError, match="not one of this model's emotions"):
        cap.retake("contempt")


def test_feeding_from_another_thread_while_the_page_reads(frames):
    cap = GuidedCapture(MODEL_CLASSES, FAST)

    worker = threading.Thread(target=follow_prompts, args=(cap, frames))
    worker.start()
    seen = []
    while worker.is_alive():
        s = cap.snapshot()
        assert sum(s.counts.values()) == sum(len(c) for c in s.crops.values())   # one consistent copy
        seen.append(s.version)
    worker.join()
    assert cap.snapshot().done and seen == sorted(seen)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        CaptureSettings(shots=0)
    with pytest.raises(ValueError, match="negative"):
        CaptureSettings(countdown_s=-1)
