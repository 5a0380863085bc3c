"""Webcam: the camera goes through the same recognizer as photos, live, via WebRTC (streamlit-webrtc).

Connection settings (rtc_configuration): by default {"iceServers": []}, i.e. no STUN/TURN at all,
which is what works on localhost and on one LAN (and needs no internet). For a remote server
behind NAT, give STUN/TURN servers either in `.streamlit/secrets.toml`:

    ice_servers = [{ urls = "stun:stun.l.google.com:19302" },
                   { urls = "turn:turn.example.com:3478", username = "u", credential = "p" }]

or in the environment: FER_ICE_SERVERS='[{"urls": "stun:stun.l.google.com:19302"}]'.
The secret wins when both are set.
"""

from __future__ import annotations

import os
import queue
import time

import streamlit as st

from fer_core.serve import annotate
from fer_core.serve.live import (
    CaptureSlot,
    IceConfigError,
    LiveStats,
    load_srtp_safely,
    make_frame_callback,
    parse_ice_servers,
)

load_srtp_safely()   # before streamlit_webrtc: see the docstring (a segfault otherwise, after TensorFlow)
from streamlit_webrtc import WebRtcMode, webrtc_streamer  # noqa: E402
from streamlit_webrtc.shutdown import SessionShutdownObserver  # noqa: E402

from fer_core.serve.video import FramePipeline  # noqa: E402
from pages._calibrate_webcam import calibration_panel, calibration_start_form, update_panel  # noqa: E402
from pages._common import detector_settings, ensure_app_navigation, model_picker, recognizer_for  # noqa: E402
from pages._profiles import profile_picker  # noqa: E402

ensure_app_navigation()


def ice_servers() -> list[dict]:
    """STUN/TURN servers from st.secrets["ice_servers"], else env FER_ICE_SERVERS, else none."""
    source, value = "FER_ICE_SERVERS", os.environ.get("FER_ICE_SERVERS")
    try:
        if "ice_servers" in st.secrets:
            source, value = "secrets ice_servers", st.secrets["ice_servers"]
    except Exception:   # no secrets.toml at all: that is the normal local case
        pass
    try:
        return parse_ice_servers(value)
    except IceConfigError as e:
        st.warning(f"Ignoring {source}: {e} Connecting without STUN/TURN (works on localhost).")
        return []


def session_end_observer(callback):
    """Calls `callback` when this browser session ends or leaves the page (streamlit-webrtc's observer, the one
    it stops its own workers with); None where no Streamlit server runs the page (AppTest's mocked runtime)."""
    try:
        return SessionShutdownObserver(callback)
    except (AttributeError, RuntimeError, TypeError):
        return None


def capture_slot() -> CaptureSlot:
    """This session's calibration slot: it survives the callback's rebuilds, so a settings change mid-calibration
    keeps the shots taken so far."""
    return st.session_state.setdefault("webcam_capture_slot", CaptureSlot())


def live_session(run_path, recognizer, detector_config: tuple, smooth: int, profile_key=None):
    """This browser session's (callback, reports queue), rebuilt only when the settings change.

    The frame callback runs on streamlit-webrtc's worker thread, not the script's thread, so it
    must not call Streamlit. It hands each frame's result to the page through a bounded queue.Queue
    (thread-safe; the page waits on it without polling; when the page lags, the oldest report is
    dropped rather than the video thread blocked). The pipeline's face-search thread stops when the
    browser session ends or the user leaves the page (streamlit-webrtc's own session observer, the
    one it uses for its workers), and when the settings change.
    """
    config = (str(run_path), detector_config, smooth, profile_key)
    live = st.session_state.get("webcam_live")
    if live is None or live["config"] != config or live["pipeline"].closed:
        if live is not None:
            if live.get("observer") is not None:
                live["observer"].stop()
            live["pipeline"].close()
        reports: queue.Queue = queue.Queue(maxsize=30)
        # background_detect: the full-frame face search runs on the second core, never on the frame path
        pipeline = FramePipeline(recognizer, smooth_frames=smooth, background_detect=True)
        live = {"config": config, "reports": reports, "pipeline": pipeline,
                "callback": make_frame_callback(pipeline, reports, capture_slot()),
                "observer": session_end_observer(pipeline.close)}
        st.session_state["webcam_live"] = live
    return live["callback"], live["reports"]


st.title("Webcam")
st.write("Press START and allow the camera: every face is boxed and labelled live. "
         "Frames are analysed by the server running this app and are not stored.")

with st.sidebar:
    st.header("Model")
    run_path = model_picker(key="webcam_model")
    detector, detector_config = detector_settings("webcam", min_size_default=40)
    smooth = st.slider("Smooth the emotion over (frames)", 1, 30, 8, key="webcam_smooth",
                       help="Averaging over recent frames stops the label from flickering.")

if run_path is None:
    st.stop()

shared = recognizer_for(run_path)
with st.sidebar:
    profiled, profile_name = profile_picker(shared, "webcam")
# the live worker is rebuilt when the profile changes, also when one is saved again under the same name
profile_key = (profile_name, profiled.profile_scope, str(profiled.profile.created)) if profile_name else None
base_recognizer, recognizer = annotate.with_detector(shared, detector), annotate.with_detector(profiled, detector)
callback, reports = live_session(run_path, recognizer, detector_config, smooth, profile_key)
ctx = webrtc_streamer(
    key="emotion-webcam",
    mode=WebRtcMode.SENDRECV,
    rtc_configuration={"iceServers": ice_servers()},
    media_stream_constraints={"video": True, "audio": False},
    video_frame_callback=callback,
    async_processing=True,
)

line = st.empty()
slot = capture_slot()
panel = calibration_panel(slot, base_recognizer) if slot.capture is not None else None
if panel is None:
    calibration_start_form(slot, base_recognizer.class_names)
if not ctx.state.playing:
    line.caption("Not running. Press START to begin.")
else:
    stats = LiveStats()
    while ctx.state.playing:
        try:
            stats.add(reports.get(timeout=1.0))
            while not reports.empty():          # catch up: show the newest frame's numbers
                stats.add(reports.get_nowait())
        except queue.Empty:
            pass
        # a Streamlit call on every turn also lets STOP (a rerun) interrupt this loop
        line.markdown(stats.line())
        if panel is not None:
            state = slot.capture.snapshot(time.monotonic()) if slot.capture is not None else None
            if state is None or state.done != panel["done"]:
                st.rerun()                      # all shots taken: show the name field and Save
            update_panel(panel, state)
