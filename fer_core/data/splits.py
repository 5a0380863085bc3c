"""Split specs -> train/val/test index arrays, reproducible from a seed.

  official               the dataset's own split (FER2013: Training / PublicTest=val / PrivateTest=test)
  subject-kfold:K:FOLD   subject-independent K-fold (no person in two parts), stratified where possible
  random:FRACTION        stratified random hold-out of FRACTION for test; may leak subjects (recorded)
  auto                   official where the dataset has one, subject-kfold:5:0 with subjects, else random:0.2
Validation is always carved from the training part (never from test), by subject where subjects are known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_core.data.datasets import Dataset, DatasetError

VAL_FRACTION = 0.1


@dataclass
class Split:
    spec: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    leaks_subjects: bool = False
    note: str = ""

    def to_json(self, seed: int, fingerprint: str) -> dict:
        return {
            "spec": self.spec, "seed": seed, "dataset_fingerprint": fingerprint,
            "leaks_subjects": self.leaks_subjects, "note": self.note,
            "counts": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "indices": {"train": self.train.tolist(), "val": self.val.tolist(), "test": self.test.tolist()},
        }


def resolve_spec(ds: Dataset, spec: str) -> str:
    spec = (spec or "auto").strip()
    if spec == "auto":
        if ds.splits is not None:
            return "official"
        if ds.groups is not None:
            return "subject-kfold:5:0"
        return "random:0.2"
    return spec


def training_faces(summary: dict, spec: str = "auto") -> int:
    """About how many faces train under SPEC, from a dataset's summary (Dataset.summary), before reading it
    into a split: the Train form quotes times from it."""
    totals = summary.get("split_totals") or {}
    if "train" in totals and spec in ("auto", "official"):      # without a val part, val comes out of train
        return int(totals["train"] * (1 if "val" in totals else 1 - VAL_FRACTION))
    if spec == "auto":
        spec = "subject-kfold:5:0" if summary.get("has_subjects") else "random:0.2"
    held_out = 1 / int(spec.split(":")[1]) if spec.startswith("subject-kfold:") else \
        float(spec.split(":")[1]) if spec.startswith("random:") else 0.0
    return int(summary.get("num_samples", 0) * (1 - held_out) * (1 - VAL_FRACTION))


def _stratified_fraction(labels: np.ndarray, idx: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Split idx into (rest, held) with `fraction` of each class held out (at least one where a class has 2+)."""
    held = []
    for c in np.unique(labels[idx]):
        members = idx[labels[idx] == c]
        members = members[rng.permutation(len(members))]
        n = int(round(len(members) * fraction))
        if n == 0 and len(members) >= 2 and fraction > 0:
            n = 1
        held.append(members[:n])
    held = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    rest = np.setdiff1d(idx, held)
    return rest, held


def group_kfold_assign(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> dict:
    """Assign each group to one of k folds, balancing class counts (greedy, like StratifiedGroupKFold)."""
    uniq = np.unique(groups)
    if len(uniq) < k:
        raise DatasetError(f"subject-kfold needs at least K subjects; found {len(uniq)} subjects for K={k}.")
    classes = np.unique(labels)
    per_group = {g: np.array([(labels[groups == g] == c).sum() for c in classes], dtype=float) for g in uniq}
    rng = np.random.default_rng(seed)
    order = list(uniq[rng.permutation(len(uniq))])
    order.sort(key=lambda g: -float(np.std(per_group[g])))    # hardest-to-place groups first
    fold_counts = np.zeros((k, len(classes)))
    totals = np.maximum(sum(per_group.values()), 1)
    assign = {}
    for g in order:
        best, best_cost = 0, None
        for f in range(k):
            trial = fold_counts.copy()
            trial[f] += per_group[g]
            cost = float(np.std(trial / totals, axis=0).mean()) + 1e-6 * trial[f].sum()
            if best_cost is None or cost < best_cost:
                best, best_cost = f, cost
        fold_counts[best] += per_group[g]
        assign[g] = best
    return assign


def make_split(ds: Dataset, spec: str, seed: int) -> Split:
    spec = resolve_spec(ds, spec)
    rng = np.random.default_rng(seed)
    n = len(ds)
    all_idx = np.arange(n)
    if spec == "official":
        if ds.splits is None:
            raise DatasetError(f"{ds.name} has no official split; use subject-kfold:K:FOLD or random:FRACTION.")
        train = all_idx[ds.splits == "train"]
        val = all_idx[ds.splits == "val"]
        test = all_idx[ds.splits == "test"]
        if len(val) == 0:   # a train/test folder pair: carve validation out of train
            train, val = _stratified_fraction(ds.labels, train, VAL_FRACTION, rng)
        return Split(spec, train, val, test)

    if spec.startswith("subject-kfold:"):
        try:
            _, k, fold = spec.split(":")
            k, fold = int(k), int(fold)
            assert k >= 2 and 0 <= fold < k
        except (ValueError, AssertionError):
            raise DatasetError(f"bad split '{spec}': write subject-kfold:K:FOLD with K >= 2 and "
                               "0 <= FOLD < K.") from None
        if ds.groups is None:
            raise DatasetError(f"{ds.name} has no subject ids, so a subject-independent split is impossible; "
                               "use random:FRACTION (it may put one person in train and test).")
        assign = group_kfold_assign(ds.labels, ds.groups, k, seed)
        fold_of = np.array([assign[g] for g in ds.groups])
        test = all_idx[fold_of == fold]
        rest = all_idx[fold_of != fold]
        # validation: a subject-grouped ~10% of the training subjects
        inner = group_kfold_assign(ds.labels[rest], ds.groups[rest], 10 if len(set(ds.groups[rest])) >= 10 else 2,
                                   seed + 1)
        inner_fold = np.array([inner[g] for g in ds.groups[rest]])
        val, train = rest[inner_fold == 0], rest[inner_fold != 0]
        return Split(spec, np.sort(train), np.sort(val), np.sort(test))

    if spec.startswith("random:"):
        try:
            frac = float(spec.split(":", 1)[1])
            assert 0 < frac < 1
        except (ValueError, AssertionError):
            raise DatasetError(f"bad split '{spec}': write random:FRACTION with 0 < FRACTION < 1, "
                               "e.g. random:0.2.") from None
        rest, test = _stratified_fraction(ds.labels, all_idx, frac, rng)
        train, val = _stratified_fraction(ds.labels, rest, VAL_FRACTION, rng)
        leaks = ds.groups is not None
        note = ("random split: frames of one subject can fall in both train and test, "
                "which inflates test accuracy") if leaks else ""
        return Split(spec, train, val, test, leaks_subjects=leaks, note=note)

    raise DatasetError(f"unknown split '{spec}'; use official, subject-kfold:K:FOLD, random:FRACTION or auto.")


def subsample(labels: np.ndarray, idx: np.ndarray, max_samples: int, seed: int) -> np.ndarray:
    """A stratified subset of at most max_samples indices (for quick trials)."""
    if not max_samples or len(idx) <= max_samples:
        return idx
    rng = np.random.default_rng(seed + 7)
    _, kept = _stratified_fraction(labels, idx, max_samples / len(idx), rng)
    return kept[:max_samples] if len(kept) > max_samples else kept
