"""Home, Analyze photos, Webcam and Dataset pages through Streamlit's AppTest, with a real (tiny) model.

Real photos go through the real model; expectations come from calling fer_core directly,
never from hard-coded labels. The webcam's WebRTC transport is patched out here (it needs a
browser); the real camera path is tested in test_e2e_browser.py.
"""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from fer_core.serve.live import load_srtp_safely

pytestmark = pytest.mark.slow

load_srtp_safely()   # before anything imports streamlit_webrtc in this process (see fer_core.live)

from streamlit.testing.v1 import AppTest  # noqa: E402

from fer_core.runs import defaults  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "streamlit_app.py")
PHOTO_NAME = "2008_001322.jpg"
TIMEOUT = 180


# ---------------------------------------------------------------- fixtures
def _copy_run(src: Path, dst: Path, name: str) -> Path:
    shutil.copytree(src, dst)
    info = json.loads((dst / "run.json").read_text())
    info["name"] = name
    (dst / "run.json").write_text(json.dumps(info))
    return dst


@pytest.fixture(scope="module")
def app_runs(tiny_run, tmp_path_factory):
    """A runs folder with two completed runs: the default (by folder name) and a newer one.

    The newer one is listed first, so a picker that preselects the default model is really choosing.
    """
    runs = tmp_path_factory.mktemp("app_runs")
    default = _copy_run(tiny_run, runs / defaults.DEFAULT_RUN_ID, "the default model")
    other = _copy_run(tiny_run, runs / "zz-20991231-other", "other model")
    old = os.environ.get("FER_RUNS_DIR")
    os.environ["FER_RUNS_DIR"] = str(runs)
    yield {"dir": runs, "default": default, "other": other}
    if old is None:
        os.environ.pop("FER_RUNS_DIR", None)
    else:
        os.environ["FER_RUNS_DIR"] = old


@pytest.fixture(scope="module")
def recognizer(app_runs):
    from fer_core.serve.recognizer import EmotionRecognizer
    return EmotionRecognizer.from_run(app_runs["default"])


@pytest.fixture(scope="module")
def photo_bytes(photos) -> bytes:
    return (photos / PHOTO_NAME).read_bytes()


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="analyze_files").set_value([(n, d, "application/octet-stream") for n, d in files])
    at.run()
    assert not at.exception, at.exception
    return at


def faces_frame(at: AppTest):
    """The page's table of all faces (the only dataframe on the page), or an empty list."""
    assert len(at.dataframe) <= 1
    return at.dataframe[0].value if len(at.dataframe) else []


def plotly_values(v):
    """Plotly 6+ sends numeric arrays as {"dtype", "bdata" (base64)}; plain lists otherwise."""
    if isinstance(v, dict) and "bdata" in v:
        import base64
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return v


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


# ---------------------------------------------------------------- Home
def test_home_names_the_model_in_use_and_links_every_page(app_runs):
    at = open_app()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Run"] == "the default model"       # the default run, although "other" is newer
    assert metrics["Dataset"] == "CK+48"
    acc = json.loads((app_runs["default"] / "metrics.json").read_text())["test"]["accuracy"]
    assert metrics["Test accuracy"] == f"{acc:.1%}"
    classes = json.loads((app_runs["default"] / "run.json").read_text())["class_names"]
    text = " ".join(m.value for m in at.markdown)
    assert all(c in text for c in classes)
    links = {l.proto.page for l in at.get("page_link")}
    assert len(links) == 7, links


# ---------------------------------------------------------------- Analyze
def test_analyze_labels_every_face_of_a_real_photo(app_runs, recognizer, photo_bytes):
    from fer_core.data.images import decode_image
    expected = recognizer.analyze(decode_image(photo_bytes))
    assert expected, "the default detector should find faces in the test photo"

    at = upload(open_app("pages/analyze.py"), (PHOTO_NAME, photo_bytes))
    table = faces_frame(at)
    assert list(table["photo"]) == [PHOTO_NAME] * len(expected)
    assert list(table["emotion"]) == [f.emotion for f in expected]
    assert [tuple(r) for r in table[["x", "y", "width", "height"]].to_numpy()] == [f.box for f in expected]
    probs = table[recognizer.class_names].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(table["confidence"], probs.max(axis=1), atol=1e-4)
    assert len(at.get("plotly_chart")) == 1
    assert {b.label for b in at.get("download_button")} == {"Download annotated image (PNG)", "Download table (CSV)"}
    summary = next(m.value for m in at.markdown if "face(s)" in m.value)
    assert all(f.emotion in summary for f in expected)


def test_analyze_uses_the_picked_model_and_detector_settings(app_runs, photo_bytes):
    at = upload(open_app("pages/analyze.py"), (PHOTO_NAME, photo_bytes))
    picker = at.selectbox(key="analyze_model")
    assert "the default model" in picker.format_func(picker.value)        # preselected
    assert any(c.value.startswith(f"Model: the default model ({app_runs['default'].name}) · classes: ")
               for c in at.caption)                                       # name, then id when they differ
    picker.select_index([i for i, o in enumerate(picker.options) if "other model" in o][0]).run()
    assert any(app_runs["other"].name in c.value for c in at.caption)
    assert len(faces_frame(at)) >= 1

    at.slider(key="analyze_min_size").set_value(300).run()     # larger than every face in the photo
    assert not at.exception
    assert any(f"No face found in {PHOTO_NAME}" in i.value for i in at.info)
    assert len(faces_frame(at)) == 0


def test_photo_without_a_face_can_be_classified_whole(app_runs, recognizer):
    wall = np.tile(np.linspace(40, 220, 320, dtype=np.uint8), (240, 1))        # a plain gradient: no face
    at = upload(open_app("pages/analyze.py"), ("wall.png", png_bytes(Image.fromarray(wall))))
    assert any("No face found in wall.png" in i.value for i in at.info)
    assert len(faces_frame(at)) == 0
    box = at.checkbox[0]
    assert box.label == "Classify the whole photo as one face"
    box.check().run()
    assert not at.exception
    table = faces_frame(at)
    assert len(table) == 1 and bool(table["whole_photo"][0])
    assert (table["width"][0], table["height"][0]) == (320, 240)
    expected = recognizer.class_names[int(recognizer.classify([wall])[0].argmax())]
    assert table["emotion"][0] == expected


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")   # huge.png, refused on purpose
def test_bad_uploads_get_a_named_error_and_the_good_photo_still_works(app_runs, photo_bytes):
    huge = png_bytes(Image.new("L", (9000, 6000)))                # 54 MP, a small file
    files = [("empty.jpg", b""), ("notes.jpg", b"this is not a picture"),
             ("cut.jpg", photo_bytes[: len(photo_bytes) // 3]), ("huge.png", huge), (PHOTO_NAME, photo_bytes)]
    at = upload(open_app("pages/analyze.py"), *files)
    errors = [e.value for e in at.error]
    assert len(errors) == 4, errors
    for name, word in [("empty.jpg", "empty"), ("notes.jpg", "not an image"), ("cut.jpg", "truncated"),
                       ("huge.png", "megapixels")]:
        assert any(name in e and word in e for e in errors), (name, errors)
    assert set(faces_frame(at)["photo"]) == {PHOTO_NAME}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_gif_tiny_bomb_and_oversized_uploads_on_the_page(app_runs, photo_bytes):
    """An animated GIF is read from its first frame; a 1x1 image, a 30,000 x 30,000 PNG and a file over
    the upload limit each get their own message; the page keeps working for the good photo."""
    from test_images import png_bomb

    from fer_core.data.images import MAX_FILE_BYTES
    photo = Image.open(io.BytesIO(photo_bytes)).convert("RGB")
    gif = io.BytesIO()
    photo.save(gif, "GIF", save_all=True, append_images=[Image.new("RGB", photo.size, "black")], duration=200)
    oversized = photo_bytes + b"\0" * (MAX_FILE_BYTES + 1 - len(photo_bytes))
    files = [("party.gif", gif.getvalue()), ("dot.png", png_bytes(Image.new("L", (1, 1)))),
             ("bomb.png", png_bomb()), ("huge-scan.jpg", oversized), (PHOTO_NAME, photo_bytes)]
    at = upload(open_app("pages/analyze.py"), *files)
    errors = [e.value for e in at.error]
    assert len(errors) == 3, errors
    for name, word in [("dot.png", "1x1"), ("bomb.png", "megapixels"), ("huge-scan.jpg", "limit is 50 MB")]:
        assert any(name in e and word in e for e in errors), (name, errors)
    assert set(faces_frame(at)["photo"]) == {"party.gif", PHOTO_NAME}   # the GIF's first frame has the faces
    import tomllib
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 == MAX_FILE_BYTES   # the browser refuses what we would


def test_uploads_in_every_format_and_mode_with_exif_rotation(app_runs, photo_bytes):
    """PNG grayscale, WebP, BMP, 16-bit TIFF, CMYK JPEG and an EXIF-rotated JPEG: all give faces."""
    from fer_core.data.images import decode_image
    photo = Image.open(io.BytesIO(photo_bytes))
    rotated = photo.rotate(90, expand=True)          # stored sideways, EXIF says "rotate back"
    exif = Image.Exif()
    exif[0x0112] = 6                                  # orientation: rotate 90 CW to display
    buf = io.BytesIO()
    rotated.save(buf, "JPEG", exif=exif.tobytes())
    gray16 = Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 256))
    files = [("gray.png", png_bytes(photo.convert("L"))), ("photo.webp", png_bytes(photo, "WEBP")),
             ("photo.bmp", png_bytes(photo, "BMP")), ("deep.tiff", png_bytes(gray16, "TIFF")),
             ("cmyk.jpg", png_bytes(photo.convert("CMYK"), "JPEG")), ("sideways.jpg", buf.getvalue())]
    assert decode_image(buf.getvalue()).shape[:2] == (photo.height, photo.width)   # upright again
    at = upload(open_app("pages/analyze.py"), *files)
    assert not at.error, [e.value for e in at.error]
    found = set(faces_frame(at)["photo"])
    assert found == {n for n, _ in files}, found


def test_why_view_shows_a_gradcam_heatmap_per_face(app_runs, photo_bytes):
    at = upload(open_app("pages/analyze.py"), (PHOTO_NAME, photo_bytes))
    n_faces = len(faces_frame(at))
    images_before = len(at.get("image"))
    at.toggle[0].set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == images_before + n_faces


def test_gradcam_explains_the_predicted_class(recognizer, photo_bytes):
    from fer_core.serve import annotate
    from fer_core.serve.gradcam import GradCam, overlay
    result = annotate.analyze_photo(recognizer, photo_bytes, PHOTO_NAME)
    x = annotate.model_inputs(recognizer, result)
    cam = GradCam(recognizer.model)
    assert cam.conv_layer.name == "stage4b_relu"        # the last conv map, before pooling (6x6 for 48x48)
    heat, probs = cam.heatmaps(x)
    np.testing.assert_allclose(probs, recognizer.classify(x), atol=1e-4)   # the same model, the same answer
    assert heat.shape == (len(x), 48, 48) and heat.min() >= 0 and heat.max() <= 1
    assert all(h.max() == pytest.approx(1.0) for h in heat)
    # explaining another class gives another map
    other = [(int(p.argmax()) + 1) % probs.shape[1] for p in probs]
    heat_other, _ = cam.heatmaps(x, other)
    assert not np.allclose(heat, heat_other)
    crop = annotate.face_crops(result)[0]
    assert overlay(crop, heat[0]).shape == crop.shape


def test_gradcam_explains_the_committed_default_model(default_run, photo_bytes):
    """The default model computes in bfloat16: Grad-CAM must explain that model's own answer (it once
    crashed on bfloat16 maps)."""
    from fer_core.serve import annotate
    from fer_core.serve.gradcam import GradCam
    from fer_core.serve.recognizer import EmotionRecognizer
    recognizer = EmotionRecognizer.from_run(default_run)
    x = annotate.model_inputs(recognizer, annotate.analyze_photo(recognizer, photo_bytes, PHOTO_NAME))
    cam = GradCam(recognizer.model)
    assert cam.conv_layer.output.shape[1] >= 6     # a map fine enough to show where (6x6 at 48 px)
    heat, probs = cam.heatmaps(x)
    own = np.asarray(recognizer.model(x, training=False), np.float32)
    np.testing.assert_allclose(probs, own, atol=0.02)                 # bfloat16 rounding, no other difference
    assert (probs.argmax(1) == own.argmax(1)).all()
    assert heat.shape == (len(x), 48, 48) and np.isfinite(heat).all() and heat.max() == pytest.approx(1.0)


def test_gradcam_reaches_into_a_nested_imagenet_base():
    """ImageNet backbones sit as a sub-model inside 'features'; Grad-CAM must take its call inside features."""
    from fer_core.model.backbones import build_model
    from fer_core.serve.gradcam import GradCam
    model, _, _ = build_model("mobilenetv2", 3, input_size=64, weights="none", augment=False)
    cam = GradCam(model)
    faces = np.random.default_rng(0).integers(0, 255, (2, 48, 48, 1)).astype(np.float32)
    heat, probs = cam.heatmaps(faces)
    np.testing.assert_allclose(probs, np.asarray(model(faces, training=False)), atol=1e-4)
    assert heat.shape == (2, 48, 48) and np.isfinite(heat).all()


# ---------------------------------------------------------------- Webcam
def _face_frame(photos):
    import av
    import cv2
    img = cv2.resize(cv2.imread(str(photos / PHOTO_NAME)), (640, 480))
    return img, av.VideoFrame.from_ndarray(img, format="bgr24")


def open_webcam(env: dict | None = None):
    with mock.patch.dict(os.environ, env or {}), mock.patch("streamlit_webrtc.webrtc_streamer") as streamer:
        streamer.return_value.state.playing = False
        at = open_app("pages/webcam.py")
    assert streamer.call_count == 1
    return at, streamer.call_args.kwargs


def test_webcam_page_wires_the_recognizer_into_the_video_callback(app_runs, recognizer, photos):
    at, kwargs = open_webcam()
    assert kwargs["rtc_configuration"] == {"iceServers": []}              # localhost: no STUN/TURN
    assert kwargs["media_stream_constraints"] == {"video": True, "audio": False}
    assert any("Press START" in c.value for c in at.caption)

    img, frame = _face_frame(photos)
    out = kwargs["video_frame_callback"](frame).to_ndarray(format="bgr24")
    assert out.shape == img.shape
    assert np.abs(out.astype(int) - img).sum() > 0                       # boxes and labels drawn
    report = at.session_state["webcam_live"]["reports"].get(timeout=5)
    assert report.frame == 1 and report.faces >= 1
    assert report.emotion in recognizer.class_names
    # one detector per page session: the pipeline's is the session's, and BlazeFace (searching every frame)
    # gets no second detector or thread for a background search it would never use
    pipeline = at.session_state["webcam_live"]["pipeline"]
    assert pipeline.recognizer.detector is at.session_state["webcam_detector_made"][1]
    assert pipeline._executor is None and pipeline._bg_detector is None


def test_webcam_ice_servers_come_from_the_environment(app_runs):
    servers = [{"urls": "stun:stun.example.org:3478"}]
    _, kwargs = open_webcam({"FER_ICE_SERVERS": json.dumps(servers)})
    assert kwargs["rtc_configuration"] == {"iceServers": servers}
    at, kwargs = open_webcam({"FER_ICE_SERVERS": "stun:not-json"})
    assert kwargs["rtc_configuration"] == {"iceServers": []}
    assert any("FER_ICE_SERVERS" in w.value for w in at.warning)


def test_live_stats_and_queue_never_block_the_video_thread():
    from fer_core.serve.live import FrameReport, LiveStats, put_latest
    q = queue.Queue(maxsize=2)
    for i in range(1, 6):
        put_latest(q, i)                    # never blocks; keeps the newest
    assert [q.get_nowait(), q.get_nowait()] == [4, 5]
    stats = LiveStats(window_s=10)
    for i in range(1, 11):
        stats.add(FrameReport(i, 100 + i * 0.1, 1, "happy", 20.0))
    assert stats.fps == pytest.approx(10.0)
    assert stats.line().startswith("Processed frames: 10 · 10.0 fps · faces: 1 · emotion: happy")


# ---------------------------------------------------------------- Dataset
def test_dataset_page_counts_classes_and_shows_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_DATA_ROOTS", str(tmp_path))          # the page reads only under allowed folders
    counts = {"happy": 5, "sad": 3, "surprise": 1}
    rng = np.random.default_rng(1)
    for cls, n in counts.items():
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/dataset.py")
    at.session_state["dataset_path"] = str(tmp_path)
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    shown = {x: int(y) for trace in fig["data"] for x, y in zip(trace["x"], plotly_values(trace["y"]))}
    assert shown == counts
    text = " ".join(m.value for m in at.markdown)
    assert "9 faces" in text and all(f"**{c}**" in text for c in counts)
    # one st.image per class, each holding that class's samples (up to 8)
    assert [len(i.value) for i in at.get("image")] == list(counts.values())

    at.text_input(key="dataset_path").set_value(str(tmp_path / "nope")).run()
    assert not at.exception
    assert any("Dataset path not found" in e.value and "nope" in e.value for e in at.error)
