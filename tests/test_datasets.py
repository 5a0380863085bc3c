"""Every dataset loader, on small files written here in each exact format, plus the shared data where present."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_cli

from fer_core.data.datasets import DatasetError, check_trainable, detect_format, load_dataset
from fer_core.data.emotions import FER2013_CLASSES

pytestmark = pytest.mark.unit


def _face(seed: int, size: int = 48, colour: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (size, size, 3) if colour else (size, size), dtype=np.uint8)
    return img


def _write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img), path
    return path


# ---------------------------------------------------------------- FER2013 csv
FER_HEADER = ["emotion", "pixels", "Usage"]


def _pixels(img: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in img.ravel())


def test_fer2013_csv_exact_format(tmp_path):
    rows, expected = [], []
    usages = ["Training", "PublicTest", "PrivateTest"]
    for i in range(14):
        img = _face(i)
        label = i % 7
        usage = usages[i % 3]
        rows.append([label, _pixels(img), usage])
        expected.append((img, label, usage))
    path = tmp_path / "fer2013.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FER_HEADER)
        w.writerows(rows)

    assert detect_format(path) == "fer2013-csv"
    ds = load_dataset(path)
    assert ds.format == "fer2013-csv"
    # the Kaggle label order: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral
    assert ds.class_names == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert len(ds) == 14 and ds.problems == []
    assert ds.images.shape == (14, 48, 48) and ds.images.dtype == np.uint8
    for i, (img, label, usage) in enumerate(expected):
        assert np.array_equal(ds.images[i], img)
        assert ds.labels[i] == label
        assert ds.splits[i] == {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}[usage]
        assert ds.sources[i] == f"row {i + 2}"
    assert ds.class_names[ds.labels[6]] == "neutral" and ds.class_names[ds.labels[4]] == "sad"
    assert ds.summary()["split_totals"] == {"train": 5, "val": 5, "test": 4}


def test_fer2013_csv_bad_rows_are_named_by_row_number_and_skipped(tmp_path):
    good = _pixels(_face(1))
    lines = [
        "emotion,pixels,Usage",
        f"0,{good},Training",                  # row 2: fine
        f"9,{good},Training",                  # row 3: label out of range
        f"happy,{good},Training",              # row 4: label not a number
        "3,1 2 3,Training",                    # row 5: not a square image
        "3," + " ".join(["300"] + ["0"] * (48 * 48 - 1)) + ",Training",   # row 6: a value over 255
        "4,,PublicTest",                       # row 7: empty pixels
        f"6,{good},PrivateTest",               # row 8: fine
        "2,12 abc 7 8,Training",               # row 9: not numbers
    ]
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    ds = load_dataset(path)
    assert len(ds) == 2
    assert ds.sources == ["row 2", "row 8"]
    assert [ds.class_names[y] for y in ds.labels] == ["angry", "neutral"]
    named = " | ".join(ds.problems)
    for row in (3, 4, 5, 6, 7, 9):
        assert f"row {row}:" in named, named
    for row in (2, 8):
        assert f"row {row}:" not in named
    assert len(ds.problems) == 6


def test_fer2013_csv_wrong_header_or_no_usable_rows(tmp_path):
    bad_header = tmp_path / "wrong.csv"
    bad_header.write_text("label,image\n0,1 2 3 4\n")
    with pytest.raises(DatasetError, match="emotion,pixels,Usage"):
        load_dataset(bad_header)
    all_bad = tmp_path / "allbad.csv"
    all_bad.write_text("emotion,pixels,Usage\n7,1 2 3 4,Training\n")
    with pytest.raises(DatasetError, match="row 2"):
        load_dataset(all_bad)


def test_fer2013_csv_without_usage_column_is_all_training(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("emotion,pixels\n" + "".join(f"{i % 7},{_pixels(_face(i))}\n" for i in range(4)))
    ds = load_dataset(path)
    assert len(ds) == 4 and set(ds.splits.tolist()) == {"train"}


# ---------------------------------------------------------------- FER-style train/test folders
def make_fer_folders(root: Path, per_class=(3, 2, 2), classes=("angry", "happy", "neutral")) -> dict:
    """train/<class>/Training_*.jpg and test/<class>/{PublicTest,PrivateTest}_*.jpg; returns the files by prefix."""
    files = {"Training": [], "PublicTest": [], "PrivateTest": []}
    seed = 0
    for c in classes:
        for prefix, part, n in (("Training", "train", per_class[0]), ("PublicTest", "test", per_class[1]),
                                ("PrivateTest", "test", per_class[2])):
            for j in range(n):
                seed += 1
                p = _write(root / part / c / f"{prefix}_{1000 + seed}.jpg", _face(seed))
                files[prefix].append(p)
    return files


def test_fer_folders_official_split_from_prefixes(tmp_path):
    root = tmp_path / "fer"
    files = make_fer_folders(root)
    assert detect_format(root) == "fer2013-folders"
    ds = load_dataset(root)
    assert ds.format == "fer2013-folders"
    assert ds.class_names == ["angry", "happy", "neutral"]
    assert len(ds) == sum(len(v) for v in files.values())
    by_source = dict(zip(ds.sources, ds.splits.tolist()))
    want = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
    for prefix, paths in files.items():
        for p in paths:
            assert by_source[str(p.relative_to(root))] == want[prefix]
    for src, y in zip(ds.sources, ds.labels):
        assert Path(src).parent.name == ds.class_names[y]
    assert ds.summary()["split_totals"] == {"train": 9, "val": 6, "test": 6}


def test_plain_train_test_folders(tmp_path):
    root = tmp_path / "tt"
    for c in ("cat_a", "cat_b"):
        for j in range(4):
            _write(root / "train" / c / f"img{j}.png", _face(j))
        for j in range(2):
            _write(root / "test" / c / f"img{j}.png", _face(10 + j))
    _write(root / "test" / "only_in_test" / "x.png", _face(99))
    ds = load_dataset(root)
    assert ds.format == "train-test-folders"
    assert ds.class_names == ["cat_a", "cat_b"]
    assert ds.summary()["split_totals"] == {"train": 8, "test": 4}
    assert any("only_in_test" in p for p in ds.problems)


# ---------------------------------------------------------------- CK+ style
def test_ckplus_style_folder_has_subjects(tmp_path):
    root = tmp_path / "ckplus" / "CK+48"
    subjects = {}
    k = 0
    for c in ("anger", "happy", "surprise"):
        for s in (5, 10, 22):
            for frame in (8, 9, 10):
                k += 1
                name = f"S{s:03d}_{k:03d}_{frame:08d}.png"
                _write(root / c / name, _face(k))
                subjects[f"{c}/{name}"] = f"S{s:03d}"
    # the single-subfolder parent is followed down to the class folders
    assert detect_format(tmp_path / "ckplus") == "ckplus"
    ds = load_dataset(tmp_path / "ckplus")
    assert ds.format == "ckplus"
    assert ds.class_names == ["anger", "happy", "surprise"]
    assert len(ds) == len(subjects)
    assert {src: g for src, g in zip(ds.sources, ds.groups.tolist())} == subjects
    assert ds.summary()["num_subjects"] == 3


# ---------------------------------------------------------------- any class folder
def test_generic_folder_mixed_formats_gray_and_colour(tmp_path):
    root = tmp_path / "mine"
    exts = ["jpg", "png", "bmp", "tiff", "webp"]
    written = {}
    for ci, c in enumerate(("happy", "sad")):
        for j, ext in enumerate(exts):
            colour = j % 2 == 1
            size = (64, 40) if colour else (48, 48)
            # flat images: their gray value survives lossy compression and resizing
            value = 30 + 40 * j + 10 * ci
            img = np.full((size[1], size[0], 3) if colour else (size[1], size[0]), value, np.uint8)
            if colour:
                img[..., 0], img[..., 1], img[..., 2] = value, value // 2, min(255, value + 20)
            p = _write(root / c / f"face_{j}.{ext}", img)
            expected = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[0, 0] if colour else value
            written[f"{c}/{p.name}"] = int(expected)
    assert detect_format(root) == "image-folder"
    ds = load_dataset(root)
    assert ds.format == "image-folder" and ds.groups is None and ds.splits is None
    assert ds.class_names == ["happy", "sad"]
    assert len(ds) == 10 and ds.problems == []
    assert ds.images.shape == (10, 48, 48) and ds.images.dtype == np.uint8
    for src, img, y in zip(ds.sources, ds.images, ds.labels):
        assert abs(float(img.mean()) - written[src]) <= 2, src
        assert src.split("/")[0] == ds.class_names[y]
    assert ds.summary()["image_sizes"] == {"48x48": 6, "64x40": 4}


def test_unreadable_files_are_listed_and_skipped(tmp_path):
    root = tmp_path / "broken"
    for c in ("a", "b"):
        for j in range(3):
            _write(root / c / f"ok{j}.png", _face(j))
    (root / "a" / "garbage.jpg").write_bytes(b"this is not a jpeg at all")
    (root / "b" / "empty.png").write_bytes(b"")
    good = cv2.imencode(".jpg", _face(5))[1].tobytes()
    (root / "b" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "empty_class").mkdir()
    (root / "a" / "notes.txt").write_text("not an image, not even looked at")

    ds = load_dataset(root)
    assert ds.class_names == ["a", "b"]
    sources = set(ds.sources)
    assert "a/garbage.jpg" not in sources and "b/empty.png" not in sources
    problems = " | ".join(ds.problems)
    assert "garbage.jpg" in problems and "empty.png" in problems
    assert "empty_class" in problems
    assert "notes.txt" not in problems and not any(s.endswith(".txt") for s in sources)
    # a truncated jpeg either decodes partially or is listed; it is never silently lost
    assert ("b/truncated.jpg" in sources) != ("truncated.jpg" in problems)
    assert len(ds) == 6 + ("b/truncated.jpg" in sources)


def test_unusable_paths_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    _write(tmp_path / "flat" / "a.png", _face(1))
    with pytest.raises(DatasetError, match="class sub-folders"):
        load_dataset(tmp_path / "flat")
    txt = tmp_path / "data.txt"
    txt.write_text("x")
    with pytest.raises(DatasetError, match="not a .csv"):
        load_dataset(txt)
    (tmp_path / "one" / "happy").mkdir(parents=True)
    for j in range(12):
        _write(tmp_path / "one" / "happy" / f"{j}.png", _face(j))
    with pytest.raises(DatasetError, match="only one class"):
        check_trainable(load_dataset(tmp_path / "one"))


def test_dataset_cli_reports_a_written_dataset(tmp_path):
    root = tmp_path / "fer"
    files = make_fer_folders(root)
    r = run_cli("dataset", root, "--json", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert s["format"] == "fer2013-folders"
    assert s["split_totals"] == {"train": len(files["Training"]), "val": len(files["PublicTest"]),
                                 "test": len(files["PrivateTest"])}


# ---------------------------------------------------------------- the shared data
def _count_prefix(root: Path, prefix: str) -> int:
    return sum(1 for p in root.glob(f"*/*/{prefix}_*") if p.is_file())


def test_shared_fer2013_counts(fer2013):
    r = run_cli("dataset", fer2013, "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert s["format"] == "fer2013-folders"
    assert sorted(s["classes"]) == sorted(FER2013_CLASSES) and len(s["classes"]) == 7
    totals = s["split_totals"]
    # what the files on disk say, and what the dataset is documented to hold
    assert totals == {"train": _count_prefix(fer2013, "Training"), "val": _count_prefix(fer2013, "PublicTest"),
                      "test": _count_prefix(fer2013, "PrivateTest")}
    assert totals == {"train": 28558, "val": 3589, "test": 3589}
    assert s["problems"] == []


def test_shared_ckplus_counts(ckplus):
    r = run_cli("dataset", ckplus, "--json", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    files = [p for p in ckplus.glob("*/*.png")]
    assert s["format"] == "ckplus"
    assert s["num_samples"] == len(files) == 981
    assert len(s["classes"]) == 7
    assert s["counts"]["all"] == {c: len(list((ckplus / c).glob("*.png"))) for c in s["classes"]}
    assert s["has_subjects"] and s["num_subjects"] == len({p.name.split("_")[0] for p in files})
