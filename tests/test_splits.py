"""Splits: subject-independent k-fold, reproducible random hold-out, the official FER2013 split."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from fer_core.data.datasets import Dataset, DatasetError, load_dataset
from fer_core.data.splits import make_split, resolve_spec

pytestmark = pytest.mark.unit


def synthetic(n_subjects=30, classes=4, seed=0, with_groups=True, splits=None) -> Dataset:
    """Subjects with 2-6 samples each, several classes per subject (like CK+ sequences)."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for s in range(n_subjects):
        for _ in range(int(rng.integers(2, 7))):
            labels.append(int(rng.integers(0, classes)))
            groups.append(f"S{s:03d}")
    n = len(labels)
    return Dataset(np.zeros((n, 48, 48), np.uint8), np.array(labels), [f"c{i}" for i in range(classes)],
                   [f"{g}_{i}.png" for i, g in enumerate(groups)], "ckplus" if with_groups else "image-folder",
                   "/tmp/synthetic", splits, np.array(groups) if with_groups else None)


def _check_partition(split, n):
    parts = [split.train, split.val, split.test]
    allidx = np.concatenate(parts)
    assert len(allidx) == n and len(set(allidx.tolist())) == n, "every sample in exactly one part"
    assert all(len(p) for p in parts)


def _subjects(ds, idx):
    return set(ds.groups[idx].tolist())


@pytest.mark.parametrize("k", [2, 5])
def test_subject_kfold_never_puts_a_subject_in_two_parts(k):
    ds = synthetic()
    tested = Counter()
    for fold in range(k):
        s = make_split(ds, f"subject-kfold:{k}:{fold}", seed=3)
        _check_partition(s, len(ds))
        tr, va, te = (_subjects(ds, p) for p in (s.train, s.val, s.test))
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert not s.leaks_subjects
        tested.update(s.test.tolist())
    # across the folds every sample is tested exactly once
    assert sorted(tested) == list(range(len(ds))) and set(tested.values()) == {1}


def test_subject_kfold_on_ckplus(ckplus):
    ds = load_dataset(ckplus)
    seen_test = set()
    for fold in range(5):
        s = make_split(ds, f"subject-kfold:5:{fold}", seed=1337)
        _check_partition(s, len(ds))
        tr, va, te = (_subjects(ds, p) for p in (s.train, s.val, s.test))
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert not (te & seen_test), "a subject is tested in two folds"
        seen_test |= te
        # stratified where possible: every class appears in every test fold
        assert set(ds.labels[s.test].tolist()) == set(range(len(ds.class_names)))
    assert seen_test == set(ds.groups.tolist())


def test_subject_kfold_reproducible_from_seed():
    ds = synthetic()
    a = make_split(ds, "subject-kfold:5:1", seed=11)
    b = make_split(ds, "subject-kfold:5:1", seed=11)
    assert all(np.array_equal(x, y) for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)))


def test_random_split_reproducible_and_records_leaks():
    ds = synthetic()
    a = make_split(ds, "random:0.2", seed=5)
    b = make_split(ds, "random:0.2", seed=5)
    c = make_split(ds, "random:0.2", seed=6)
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.test, c.test), "a different seed gives a different split"
    _check_partition(a, len(ds))
    assert abs(len(a.test) / len(ds) - 0.2) < 0.05
    # this dataset has subjects: a random split can leak them, and says so
    assert a.leaks_subjects is True and "subject" in a.note
    j = a.to_json(seed=5, fingerprint=ds.fingerprint())
    assert j["leaks_subjects"] is True and j["seed"] == 5 and j["spec"] == "random:0.2"
    assert j["indices"]["test"] == a.test.tolist()
    assert _subjects(ds, a.train) & _subjects(ds, a.test), "the leak recorded is real for this data"


def test_random_split_without_subjects_does_not_claim_a_leak():
    ds = synthetic(with_groups=False)
    s = make_split(ds, "random:0.3", seed=1)
    _check_partition(s, len(ds))
    assert s.leaks_subjects is False


def test_official_split_matches_fer_prefixes(tmp_path):
    import cv2
    root = tmp_path / "fer"
    want = {}
    k = 0
    for c in ("angry", "happy"):
        for prefix, part, n in (("Training", "train", 5), ("PublicTest", "test", 2), ("PrivateTest", "test", 3)):
            for _ in range(n):
                k += 1
                p = root / part / c / f"{prefix}_{k}.jpg"
                p.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(p), np.full((48, 48), k, np.uint8))
                want[str(p.relative_to(root))] = prefix
    ds = load_dataset(root)
    s = make_split(ds, "official", seed=0)
    _check_partition(s, len(ds))
    got = {}
    for part, idx in (("Training", s.train), ("PublicTest", s.val), ("PrivateTest", s.test)):
        for i in idx:
            got[ds.sources[i]] = part
    assert got == want
    assert resolve_spec(ds, "auto") == "official"


def test_official_split_of_plain_train_test_carves_val_from_train():
    n = 40
    splits = np.array(["train"] * 30 + ["test"] * 10)
    ds = synthetic(with_groups=False)
    ds = Dataset(ds.images[:n], ds.labels[:n], ds.class_names, ds.sources[:n], "train-test-folders", "/tmp/x", splits)
    s = make_split(ds, "official", seed=0)
    _check_partition(s, n)
    assert set(s.test.tolist()) == set(range(30, 40))
    assert set(s.val.tolist()) <= set(range(30)) and len(s.val) > 0


def test_auto_and_bad_specs():
    with_subjects, without = synthetic(), synthetic(with_groups=False)
    assert resolve_spec(with_subjects, "auto") == "subject-kfold:5:0"
    assert resolve_spec(without, "auto") == "random:0.2"
    for bad in ("subject-kfold:1:0", "subject-kfold:5:5", "subject-kfold:x", "random:1.5", "random:abc", "bogus"):
        with pytest.raises(DatasetError):
            make_split(with_subjects, bad, seed=0)
    with pytest.raises(DatasetError, match="subject"):
        make_split(without, "subject-kfold:5:0", seed=0)
    with pytest.raises(DatasetError, match="official"):
        make_split(without, "official", seed=0)
    with pytest.raises(DatasetError, match="subjects"):
        make_split(synthetic(n_subjects=3), "subject-kfold:5:0", seed=0)


@pytest.mark.parametrize("with_groups, spec", [(True, "auto"), (False, "auto"), (True, "subject-kfold:10:3"),
                                               (False, "random:0.3")])
def test_training_faces_before_reading_is_about_what_the_split_trains_on(with_groups, spec):
    """The Train form quotes a recipe's time from the dataset's summary, before any split is made: its count of
    training faces is within a few faces of the split's."""
    from fer_core.data.splits import training_faces
    ds = synthetic(n_subjects=120, with_groups=with_groups)
    split = make_split(ds, resolve_spec(ds, spec), seed=3)
    assert abs(training_faces(ds.summary(), spec) - len(split.train)) <= max(6, 0.04 * len(split.train))


def test_training_faces_of_an_official_split_is_its_training_part():
    from fer_core.data.splits import training_faces
    summary = {"num_samples": 35_887, "split_totals": {"train": 28_709, "val": 3_589, "test": 3_589}}
    assert training_faces(summary) == training_faces(summary, "official") == 28_709
    train_test = {"num_samples": 1_100, "split_totals": {"train": 1_000, "test": 100}}   # val comes out of train
    assert training_faces(train_test) == 900
