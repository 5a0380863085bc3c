"""FER+: both file layouts real users hold, written here in their exact formats, and the label rules.

The vote rules are checked against hand-worked examples of Microsoft's reference code (FERPlus/src/ferplus.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED, need, run_cli

from fer_core.data.datasets import DatasetError, detect_format, load_dataset
from fer_core.data.ferplus import FERPLUS_CLASSES, VOTE_COLUMNS, majority_label, soft_target

pytestmark = pytest.mark.unit

# votes: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
CLEAR_HAPPY = [1, 8, 1, 0, 0, 0, 0, 0, 0, 0]        # majority happy
SPLIT_VOTE = [4, 0, 0, 3, 3, 0, 0, 0, 0, 0]         # no majority (4 of 10); soft target keeps 3 emotions
NOT_A_FACE = [0, 0, 0, 0, 0, 0, 0, 0, 1, 9]         # top is NF: always left out
SINGLES = [6, 1, 1, 1, 1, 0, 0, 0, 0, 0]            # votes of 1 dropped: neutral 6 of 6
CONTEMPT = [2, 0, 0, 0, 0, 0, 0, 6, 2, 0]           # majority contempt (6 of 10)
CASES = [CLEAR_HAPPY, SPLIT_VOTE, NOT_A_FACE, SINGLES, CONTEMPT]


def test_majority_rule_drops_single_votes_and_unclear_faces():
    assert FERPLUS_CLASSES == ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
    assert majority_label(CLEAR_HAPPY) == 1
    assert majority_label(SPLIT_VOTE) == -1
    assert majority_label(NOT_A_FACE) == -1
    assert majority_label(SINGLES) == 0                  # 6 of 10 raw, 6 of 6 once the single votes go
    assert majority_label([5, 0, 0, 0, 0, 0, 0, 0, 5, 0]) == -1     # a tie with unknown is no majority
    assert majority_label(CONTEMPT) == 7


def test_probability_rule_is_the_vote_distribution():
    np.testing.assert_allclose(soft_target(CLEAR_HAPPY), np.eye(8)[1])      # the single votes are outliers
    np.testing.assert_allclose(soft_target(SPLIT_VOTE), [0.4, 0, 0, 0.3, 0.3, 0, 0, 0])
    assert soft_target(NOT_A_FACE) is None
    np.testing.assert_allclose(soft_target(CONTEMPT), [0.25, 0, 0, 0, 0, 0, 0, 0.75])  # unknown's 2 not kept
    assert soft_target([3, 3, 0, 0, 0, 0, 0, 0, 0, 4]) is None       # NF is the top vote


def _face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def make_ferplus_folders(root: Path) -> dict:
    """Microsoft's layout: FER2013{Train,Valid,Test}/fer<7 digits>.png + header-less label.csv."""
    faces = {}
    n = 0
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        d = root / folder
        d.mkdir(parents=True)
        with open(d / "label.csv", "w", newline="") as f:
            w = csv.writer(f)
            for votes in CASES:
                name = f"fer{n:07d}.png"
                img = _face(n)
                assert cv2.imwrite(str(d / name), img)
                w.writerow([name, "(0, 0, 48, 48)", *votes])
                faces[(folder, name)] = (img, votes)
                n += 1
    return faces


def test_ferplus_folders_majority(tmp_path):
    faces = make_ferplus_folders(tmp_path / "ferplus")
    assert detect_format(tmp_path / "ferplus") == "ferplus-folders"
    ds = load_dataset(tmp_path / "ferplus")
    assert ds.format == "ferplus-folders" and ds.class_names == FERPLUS_CLASSES and ds.targets is None
    # happy, neutral (singles), contempt kept in each part; the split vote and the non-face left out
    assert ds.summary()["split_totals"] == {"train": 3, "val": 3, "test": 3}
    for img, y, src, part in zip(ds.images, ds.labels, ds.sources, ds.splits):
        folder, name = src.split("/")
        expected_img, votes = faces[(folder, name)]
        np.testing.assert_array_equal(img, expected_img)
        assert y == majority_label(votes)
        assert part == {"FER2013Train": "train", "FER2013Valid": "val", "FER2013Test": "test"}[folder]
    assert any("left out by the majority rule" in p for p in ds.problems)


def test_ferplus_probability_mode_soft_targets_in_train_majority_elsewhere(tmp_path):
    make_ferplus_folders(tmp_path / "ferplus")
    ds = load_dataset(tmp_path / "ferplus", label_mode="probability")
    totals = ds.summary()["split_totals"]
    assert totals == {"train": 4, "val": 3, "test": 3}     # the split vote trains as a distribution
    train = ds.splits == "train"
    np.testing.assert_allclose(ds.targets.sum(axis=1), 1.0, atol=1e-6)
    assert any(np.allclose(t, [0.4, 0, 0, 0.3, 0.3, 0, 0, 0]) for t in ds.targets[train])
    held = ~train
    np.testing.assert_array_equal(ds.targets[held].argmax(axis=1), ds.labels[held])
    assert set(ds.targets[held].max(axis=1)) == {1.0}      # validation and test: one-hot majority labels


def _write_csv_pair(root: Path) -> list:
    """Kaggle fer2013.csv (emotion,pixels,Usage) + Microsoft's fer2013new.csv, row k describing row k."""
    root.mkdir(parents=True)
    usages = ["Training", "Training", "PublicTest", "PrivateTest", "PrivateTest", "Training"]
    votes = [CLEAR_HAPPY, SPLIT_VOTE, CONTEMPT, SINGLES, NOT_A_FACE, CLEAR_HAPPY]
    names = ["fer0000000.png", "fer0000001.png", "fer0000002.png", "fer0000003.png", "fer0000004.png", ""]
    with open(root / "fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i, usage in enumerate(usages):
            w.writerow([i % 7, " ".join(map(str, _face(i).ravel())), usage])
    with open(root / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        for usage, name, v in zip(usages, names, votes):
            w.writerow([usage, name, *v])
    return votes


def test_ferplus_csv_pair_joined_by_row_order(tmp_path):
    _write_csv_pair(tmp_path / "pair")
    for given in (tmp_path / "pair", tmp_path / "pair" / "fer2013new.csv"):
        assert detect_format(given) == "ferplus-csv"
        ds = load_dataset(given)
        assert ds.class_names == FERPLUS_CLASSES
        # row 2 happy (train), row 4 contempt (val), row 5 neutral (test); the split vote, the non-face and
        # the unnamed last row are left out
        assert ds.sources == ["row 2", "row 4", "row 5"]
        assert [ds.class_names[y] for y in ds.labels] == ["happy", "contempt", "neutral"]
        assert ds.splits.tolist() == ["train", "val", "test"]
        np.testing.assert_array_equal(ds.images[1], _face(2))     # the pixels of fer2013.csv's 3rd data row
    # the plain Kaggle csv beside it still reads as FER2013's 7 classes
    assert detect_format(tmp_path / "pair" / "fer2013.csv") == "fer2013-csv"


def test_ferplus_csv_without_pixels_or_with_a_wrong_header(tmp_path):
    _write_csv_pair(tmp_path / "pair")
    (tmp_path / "pair" / "fer2013.csv").unlink()
    with pytest.raises(DatasetError, match="put the Kaggle fer2013.csv"):
        load_dataset(tmp_path / "pair")
    _write_csv_pair(tmp_path / "bad")
    (tmp_path / "bad" / "fer2013new.csv").write_text("name,votes\nx,1\n")
    with pytest.raises(DatasetError, match="expected Microsoft's header"):
        load_dataset(tmp_path / "bad")


def test_votes_only_for_ferplus(tmp_path):
    _write_csv_pair(tmp_path / "pair")
    with pytest.raises(DatasetError, match="only FER\\+ has"):
        load_dataset(tmp_path / "pair" / "fer2013.csv", label_mode="probability")


def test_split_named_subfolders_are_warned_about_in_every_format(tmp_path):
    root = tmp_path / "parts"
    for folder in ("FER2013Train", "FER2013Valid"):      # an incomplete FER+ copy: not the FER+ layout
        (root / folder).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / folder / f"fer{i:07d}.png"), _face(i))
    ds = load_dataset(root)
    assert any("look like split names" in p for p in ds.problems)
    r = run_cli("dataset", root, timeout=120)
    assert r.returncode == 0 and "look like split names" in r.stdout
    r = run_cli("dataset", root, "--json", timeout=120)
    assert any("look like split names" in p for p in json.loads(r.stdout)["problems"])


def test_shared_ferplus_is_reported_as_ferplus():
    ferplus = need(SHARED / "ferplus")
    r = run_cli("dataset", ferplus, "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert s["format"] == "ferplus-folders" and s["classes"] == FERPLUS_CLASSES
    # Microsoft's majority rule on the shared copy (the FER+ paper's protocol)
    assert s["split_totals"] == {"train": 25045, "val": 3191, "test": 3137}
    assert not any("split names" in p for p in s["problems"])
