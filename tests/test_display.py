"""How the pages write figures for people: one colour per emotion everywhere, durations in words."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.data import emotions
from fer_core.report import display

pytestmark = pytest.mark.unit


def test_one_colour_per_emotion_on_the_boxes_and_in_the_charts():
    from fer_core.serve.recognizer import EMOTION_COLORS_BGR, Face, draw_faces
    faces = [Face((20, 20, 60, 60), "happy", {"happy": 0.9}), Face((120, 20, 60, 60), "anger", {"anger": 0.8})]
    img = draw_faces(np.zeros((120, 220, 3), np.uint8), faces)
    assert tuple(int(v) for v in img[50, 20]) == emotions.color_bgr("happy")     # the box's left edge
    assert tuple(int(v) for v in img[50, 120]) == emotions.color_bgr("angry")
    hexes = [emotions.color_hex(e) for e in emotions.EMOTION_COLORS]
    assert len(set(hexes)) == len(hexes)                                          # no two emotions alike
    for name, bgr in EMOTION_COLORS_BGR.items():                                  # the drawing's table is the same
        h = emotions.color_hex(name)
        assert bgr == (int(h[5:7], 16), int(h[3:5], 16), int(h[1:3], 16))
    assert emotions.color_map(["sad", "Sadness"]) == {"sad": emotions.color_hex("sad"),
                                                     "Sadness": emotions.color_hex("sad")}


def test_durations_are_written_as_people_say_them():
    assert [display.duration(s) for s in (None, float("nan"), 0, 59.4, 60, 150, 3599, 5446, 7200)] == [
        "", "", "0 s", "59 s", "1 min", "2 min 30 s", "59 min 59 s", "1 h 31 min", "2 h"]
