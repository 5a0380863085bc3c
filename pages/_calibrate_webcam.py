"""The Webcam page's "Calibrate to me" (the guided capture, then a name and Save) and its profile picker.

The capture itself (fer_core.profiles.capture) runs in the frame callback's thread; this module only shows
its snapshots, and turns the user's clicks (start, retake, cancel, save) into calls on it.
"""

from __future__ import annotations

import math

import cv2
import streamlit as st

from fer_core.profiles import ProfileStore
from fer_core.serve.live import CaptureSlot

THUMB = 88    # pixels: the crops are shown at this width


def start_calibration(slot: CaptureSlot, class_names) -> None:
    """The sliders are read here, not passed in: a button's args are the values of the run that drew it."""
    from fer_core.profiles.capture import CaptureSettings, GuidedCapture
    settings = CaptureSettings(shots=int(st.session_state.get("webcam_cal_shots", 3)),
                               countdown_s=float(st.session_state.get("webcam_cal_countdown", 3)))
    slot.capture = GuidedCapture(class_names, settings)
    st.session_state.pop("webcam_calibration_saved", None)


def stop_calibration(slot: CaptureSlot) -> None:
    slot.capture = None


def save_profile(slot: CaptureSlot, recognizer) -> None:
    """make_profile + store.save, then read the live video with the new profile at once."""
    from fer_core import profiles
    from fer_core.errors import UserError
    st.session_state.pop("webcam_calibration_error", None)
    try:
        profile = profiles.make_profile(st.session_state.get("webcam_profile_name", ""), slot.capture.shots(),
                                        recognizer)
        ProfileStore().save(profile)
    except UserError as e:
        st.session_state["webcam_calibration_error"] = str(e)
        return
    slot.capture = None
    st.session_state["webcam_profile"] = profile.name
    st.session_state["webcam_calibration_saved"] = profile.name


def calibration_start_form(slot: CaptureSlot, class_names) -> None:
    saved = st.session_state.get("webcam_calibration_saved")
    if saved:
        st.success(f"Profile '{saved}' saved; the live labels now read your face with it.")
    with st.expander("Calibrate to me", icon=":material/tune:", expanded=False):
        st.write("The model learns how *you* show each emotion from a few shots of your face (under a second "
                 "of work once the shots are taken). For each emotion in turn you see a prompt and a countdown; "
                 "then shots of the largest face are taken whenever it holds still. Press START on the camera "
                 "if it is not running.")
        c1, c2 = st.columns(2)
        c1.slider("Shots per emotion", 1, 5, 3, key="webcam_cal_shots")
        c2.slider("Countdown before each emotion (s)", 0, 5, 3, key="webcam_cal_countdown")
        st.button("Start calibrating", icon=":material/photo_camera:", key="webcam_cal_start",
                  on_click=start_calibration, args=(slot, class_names))


def calibration_panel(slot: CaptureSlot, recognizer) -> dict:
    """The capture's prompt and one row per emotion (its crops, a Retake button); the dict of placeholders goes
    to update_panel, which the page calls as frames come in. Once every emotion has its shots: name and Save."""
    state = slot.capture.snapshot()
    st.subheader("Calibrate to me")
    widgets = {"prompt": st.empty(), "rows": {}, "version": None, "done": state.done}
    for emotion in state.order:
        label, crops, button = st.columns([2, 7, 2], vertical_alignment="center")
        widgets["rows"][emotion] = (label.empty(), crops.empty())
        button.button("Retake", key=f"webcam_retake_{emotion}", icon=":material/replay:",
                      on_click=slot.capture.retake, args=(emotion,))
    update_panel(widgets, state)
    if state.done:
        st.text_input("Name of this profile", key="webcam_profile_name", placeholder="e.g. your first name")
        if st.session_state.get("webcam_calibration_error"):
            st.error(st.session_state["webcam_calibration_error"])
        st.button("Save profile", type="primary", icon=":material/save:", key="webcam_profile_save",
                  on_click=save_profile, args=(slot, recognizer))
    st.button("Cancel calibration", key="webcam_cal_cancel", on_click=stop_calibration, args=(slot,))
    return widgets


def update_panel(widgets: dict, state) -> None:
    """Redraw the prompt every time; the crops only when a shot was taken or dropped."""
    if state.done:
        text = "**All shots taken.** Check them, retake any emotion, then name the profile and save it."
    elif state.phase == "countdown":
        text = f"### Show **{state.emotion}** … {math.ceil(state.countdown_left)}"
    else:
        text = f"### Show **{state.emotion}**\n{state.status}"
    widgets["prompt"].markdown(text)
    if widgets["version"] == state.version:
        return
    widgets["version"] = state.version
    for emotion, (label, crops) in widgets["rows"].items():
        mark = "→ " if emotion == state.emotion else ""
        label.markdown(f"{mark}**{emotion}** {state.counts[emotion]}/{state.shots_per_emotion}")
        if state.crops[emotion]:
            crops.image([_thumb(c) for c in state.crops[emotion]], width=THUMB)
        else:
            crops.caption("no shot yet")


def _thumb(crop_bgr):
    h, w = crop_bgr.shape[:2]
    return cv2.cvtColor(cv2.resize(crop_bgr, (THUMB, max(1, round(h * THUMB / w))), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)
