"""Video files through the CLI and fer_core, on videos made here from a real photo; bad videos get messages."""

from __future__ import annotations

import csv

import cv2
import pytest

from conftest import PHOTOS, need, run_cli
from fer_core.errors import UserError
from fer_core.serve import video_file
from test_e2e_video import write_mp4

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_mp4(path, cv2.imread(str(need(PHOTOS) / "2008_001322.jpg")), frames=20)
    return path


def test_cli_video_writes_an_annotated_copy_and_one_row_per_frame_and_face(clip, tiny_run, tmp_path):
    out, table = tmp_path / "annotated.mp4", tmp_path / "faces.csv"
    r = run_cli("video", clip, "--run", tiny_run, "--out", out, "--csv", table, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ETA" in r.stderr and "20 frames read, 20 analysed" in r.stdout
    rows = list(csv.DictReader(open(table)))
    assert {int(x["frame"]) for x in rows} == set(range(20))
    per_frame = [sum(1 for x in rows if int(x["frame"]) == f) for f in range(20)]
    ids = {x["face_id"] for x in rows}
    assert len(ids) == max(per_frame)             # each face kept its id through the clip
    assert abs(float(rows[-1]["time_s"]) - 19 / 8) < 1e-3
    probs = [float(v) for k, v in rows[0].items() if k.startswith("p_")]
    assert abs(sum(probs) - 1) < 0.01
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20


def test_every_nth_frame(clip, tiny_run, tmp_path):
    r = run_cli("video", clip, "--run", tiny_run, "--csv", tmp_path / "f.csv", "--every", "5", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {int(x["frame"]) for x in csv.DictReader(open(tmp_path / "f.csv"))} == {0, 5, 10, 15}


def test_bad_videos_get_a_clear_message(clip, tmp_path, monkeypatch):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    (tmp_path / "empty.webm").write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:600])
    for path, words in ((text, "could not be read as a video"), (tmp_path / "empty.webm", "is empty"),
                        (truncated, "could not be read as a video"), (tmp_path / "missing.mp4", "no such file")):
        with pytest.raises(UserError, match=words):
            video_file.probe(path)
    monkeypatch.setattr(video_file, "MAX_VIDEO_SECONDS", 1)
    with pytest.raises(UserError, match="lasts .* the limit is"):
        video_file.probe(clip)
    r = run_cli("video", text, "--csv", tmp_path / "x.csv", timeout=120)
    assert r.returncode == 2 and "could not be read as a video" in r.stderr and "Traceback" not in r.stderr


def test_video_limits_name_the_upload_and_refuse_huge_frames(clip, tmp_path, monkeypatch):
    """An upload is saved as input.mp4: the message names the file the user chose. A frame over 4K's pixel count
    is refused before any frame is analysed; a photo renamed .mp4 never shows a negative or absurd duration."""
    text = tmp_path / "input.mp4"
    text.write_text("not a video at all\n" * 50)
    with pytest.raises(UserError, match="^holiday.mp4 could not be read"):
        video_file.probe(text, name="holiday.mp4")
    assert video_file.probe(clip).width * video_file.probe(clip).height == 640 * 480
    monkeypatch.setattr(video_file, "MAX_VIDEO_PIXELS", 640 * 480 - 1)
    with pytest.raises(UserError, match="640x480 pixels; the limit is .* Scale it down"):
        video_file.probe(clip, name="big.mp4")
    monkeypatch.undo()
    photo = tmp_path / "photo.mp4"
    photo.write_bytes((PHOTOS / "2008_001322.jpg").read_bytes())
    try:
        info = video_file.probe(photo)
    except UserError:
        return
    assert 0 <= info.seconds < 24 * 3600 and info.frames >= 0


def test_predict_reads_a_folder_recursively_into_one_csv(tiny_run, tmp_path):
    photos = need(PHOTOS)
    (tmp_path / "album" / "trip").mkdir(parents=True)
    for name, sub in (("2008_001322.jpg", ""), ("dogs.jpg", "trip"), ("2009_004587.jpg", "trip")):
        (tmp_path / "album" / sub / name).write_bytes((photos / name).read_bytes())
    r = run_cli("predict", tmp_path / "album", "--run", tiny_run, "--csv", tmp_path / "all.csv", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / "all.csv")))
    images = {x["image"].split("album/")[1] for x in rows}
    assert images == {"2008_001322.jpg", "trip/dogs.jpg", "trip/2009_004587.jpg"}
    assert [x["error"] for x in rows if x["image"].endswith("dogs.jpg")] == ["no face found"]
    assert sum(1 for x in rows if x["image"].endswith("2008_001322.jpg")) >= 2


def test_a_session_s_video_files_go_when_it_ends_or_when_they_expire(tmp_path):
    import gc
    import os
    import time
    from fer_core.serve import video_work
    mine, other = video_work.SessionFolders(tmp_path), video_work.SessionFolders(tmp_path)
    first = mine.new("abc")
    (first / "input.mp4").write_bytes(b"x" * 100)
    same_file_elsewhere = other.new("abc")                       # another session, the same upload
    second = mine.new("def")                                      # the next upload replaces the first
    assert not first.exists() and second.is_dir() and same_file_elsewhere.is_dir()
    del mine
    gc.collect()
    assert not second.exists() and same_file_elsewhere.is_dir()   # the session ended: its files went
    old = time.time() - video_work.KEEP_SECONDS - 60
    for p in (same_file_elsewhere, *same_file_elsewhere.iterdir()):
        os.utime(p, (old, old))
    live = video_work.SessionFolders(tmp_path)
    fresh = live.new("fresh")
    assert video_work.remove_expired(tmp_path) == [same_file_elsewhere.name]
    assert not same_file_elsewhere.exists() and fresh.is_dir()


def test_video_page_says_what_it_keeps_and_removes_it(clip, tiny_run, tmp_path, monkeypatch):
    import os
    import shutil
    import time
    from streamlit.testing.v1 import AppTest
    from conftest import REPO
    from fer_core.serve import video_work
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / tiny_run.name)
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    monkeypatch.setattr(video_work, "WORK", tmp_path / "work")
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/video.py").run()
    assert any("removed when your session ends, or 1 hour after" in c.value for c in at.caption)
    at.file_uploader(key="video_file").set_value([("clip.mp4", clip.read_bytes(), "video/mp4")]).run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value.columns) == ["face", "first seen (s)", "last seen (s)", "frames",
                                                   "main emotion"]                # headers, not snake_case
    import json
    from fer_core.data import emotions
    lines = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]             # the timeline: boxes' colours
    assert lines and all(t["line"]["color"] == emotions.color_hex(t["name"]) for t in lines)
    folders = list((tmp_path / "work").iterdir())
    assert len(folders) == 1 and {p.name for p in folders[0].iterdir()} == {"input.mp4", "annotated.mp4", "faces.csv"}
    old = time.time() - video_work.KEEP_SECONDS - 60
    for p in (folders[0], *folders[0].iterdir()):
        os.utime(p, (old, old))
    at.run()                                                      # the next visit sweeps expired files
    assert not folders[0].exists() and not at.exception
    assert any("were removed" in i.value for i in at.info)
