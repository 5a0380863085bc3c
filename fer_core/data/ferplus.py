"""FER+ (Microsoft's 10-annotator relabelling of FER2013): its two file layouts and its label modes.

Layouts real users hold:
  folders   FER2013Train/, FER2013Valid/, FER2013Test/, each with fer<7 digits>.png and a header-less
            label.csv: name, "(0, 0, 48, 48)", 8 emotion votes, unknown, NF (10 votes a face)
  csv pair  Microsoft's fer2013new.csv (Usage, Image name, the same 10 vote columns; one row per row of the
            Kaggle fer2013.csv, an empty name = a face FER+ dropped) beside the Kaggle fer2013.csv (the pixels)

Label modes follow the FER+ paper and Microsoft's reference code (FERPlus/src/ferplus.py):
  majority     votes of 1 are dropped as outliers; a face is kept only when one emotion holds more than
               half of the remaining votes; faces whose top vote is unknown or NF are left out
  probability  train on the vote distribution (soft targets); validation and test still use majority labels,
               so every FER+ figure is scored the same way
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from fer_core.data.dataset import Dataset, DatasetError
from fer_core.data.emotions import canonical

VOTE_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                "unknown", "NF"]
EMOTION_VOTES = 8                                   # the first 8 columns are emotions
FERPLUS_CLASSES = [canonical(c) for c in VOTE_COLUMNS[:EMOTION_VOTES]]
FOLDER_SPLIT = {"FER2013Train": "train", "FER2013Valid": "val", "FER2013Test": "test"}
USAGE_SPLIT = {"training": "train", "publictest": "val", "privatetest": "test"}
LABEL_MODES = ("majority", "probability")


# ---------------------------------------------------------------- label rules
def _drop_single_votes(votes: np.ndarray) -> np.ndarray:
    v = np.asarray(votes, dtype=np.float64).copy()
    v[v <= 1] = 0.0
    return v


def majority_label(votes) -> int:
    """Index of the emotion more than half of the (non-outlier) annotators chose; -1 when none did."""
    v = _drop_single_votes(votes)
    total = v.sum()
    if total <= 0:
        return -1
    top = int(v.argmax())
    if v[top] <= 0.5 * total or top >= EMOTION_VOTES:
        return -1
    return top


def soft_target(votes) -> np.ndarray | None:
    """The vote distribution over the 8 emotions, as Microsoft's 'probability' mode builds it; None = left out.

    A port of the reference loop: the top emotions (ties in column order) are taken until they hold 75% of
    the votes or three are taken; meeting unknown/NF among them stops the loop (it is kept only when it came
    first, and then the face is left out). Half of the votes or less taken, or more than three: left out.
    """
    raw = _drop_single_votes(votes)
    total = raw.sum()
    if total <= 0:
        return None
    kept = np.zeros_like(raw)
    part, count, valid = 0.0, 0, True
    while part < 0.75 * total and count < 3 and valid:
        top = raw.max()
        for i in range(len(raw)):
            if raw[i] != top:
                continue
            kept[i], raw[i] = top, 0.0
            part += top
            count += 1
            if i >= EMOTION_VOTES:                   # unknown or not a face among the top votes
                valid = False
                if kept.sum() > top:                 # emotions came before it: drop only the unknown/NF
                    kept[i] = 0.0
                    count -= 1
                break
    if kept.sum() <= 0.5 * total or count > 3 or kept[:EMOTION_VOTES].sum() <= 0 or kept.argmax() >= EMOTION_VOTES:
        return None
    emotions = kept[:EMOTION_VOTES]
    return (emotions / emotions.sum()).astype(np.float32)


# ---------------------------------------------------------------- readers
def vote_row(cells: list[str], where: str) -> np.ndarray:
    try:
        votes = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        raise DatasetError(f"{where}: the vote columns are not numbers ({', '.join(cells)[:80]}); expected "
                           f"{len(VOTE_COLUMNS)} counts: {', '.join(VOTE_COLUMNS)}.") from None
    if len(votes) != len(VOTE_COLUMNS) or (votes < 0).any():
        raise DatasetError(f"{where}: expected {len(VOTE_COLUMNS)} non-negative vote counts "
                           f"({', '.join(VOTE_COLUMNS)}), found {len(cells)}.")
    return votes


def read_label_csv(path: Path) -> list[tuple[str, np.ndarray]]:
    """label.csv of one FER+ folder: [(file name, votes)]."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or not row[0].strip():
                continue
            if len(row) != 2 + len(VOTE_COLUMNS):
                raise DatasetError(f"{path}, line {line_no}: expected 12 columns (name, face box, 10 votes), "
                                   f"found {len(row)}. Is this Microsoft's FER+ label.csv?")
            rows.append((row[0].strip(), vote_row(row[2:], f"{path}, line {line_no}")))
    return rows


def _apply_mode(votes: list[np.ndarray], split: str, label_mode: str):
    """-> (kept positions, hard labels, soft targets or None) for one part."""
    keep, labels, targets = [], [], []
    for i, v in enumerate(votes):
        if split == "train" and label_mode == "probability":
            t = soft_target(v)
            if t is None:
                continue
            keep.append(i), labels.append(int(t.argmax())), targets.append(t)
        else:
            y = majority_label(v)
            if y < 0:
                continue
            keep.append(i), labels.append(y), targets.append(np.eye(EMOTION_VOTES, dtype=np.float32)[y])
    return keep, labels, targets


def assemble(parts: list[tuple[str, list, list[np.ndarray], list[str]]], label_mode: str, fmt: str,
              path: str, problems: list[str]) -> Dataset:
    """parts: [(split, images, votes, sources)] -> one Dataset with majority/soft labels applied."""
    imgs, labels, targets, splits, sources, dropped = [], [], [], [], [], Counter()
    for split, part_imgs, part_votes, part_sources in parts:
        keep, y, t = _apply_mode(part_votes, split, label_mode)
        dropped[split] += len(part_votes) - len(keep)
        imgs += [part_imgs[i] for i in keep]
        sources += [part_sources[i] for i in keep]
        labels += y
        targets += t
        splits += [split] * len(keep)
    if not imgs:
        raise DatasetError(f"{path}: no face has a usable FER+ label ({label_mode} rule).")
    for split, n in dropped.items():
        if n:
            problems.append(f"{n} {split} faces left out by the {label_mode if split == 'train' else 'majority'} "
                            "rule (no clear emotion, or unknown / not a face)")
    ds = Dataset(np.stack(imgs), np.array(labels, dtype=np.int64), list(FERPLUS_CLASSES), sources, fmt, path,
                 np.array(splits), None, problems, Counter({(48, 48): len(imgs)}))
    ds.targets = np.stack(targets) if label_mode == "probability" else None
    ds.label_mode = label_mode
    return ds


def is_ferplus_folder(p: Path) -> bool:
    return all((p / name).is_dir() for name in FOLDER_SPLIT)


def ferplus_csv_in(p: Path) -> Path | None:
    """A FER+ vote file given directly, or lying in the folder given."""
    if p.is_file():
        return p if p.name.lower() == "fer2013new.csv" else None
    f = p / "fer2013new.csv"
    return f if f.is_file() else None


def read_new_csv(path: Path):
    """Microsoft's fer2013new.csv -> (line of the matching fer2013.csv row, split, votes) for each named face.

    Row k of fer2013new.csv describes row k of fer2013.csv (both have one header line); an empty image name
    means FER+ dropped that face.
    """
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]] if rows else []
    if header[:2] != ["Usage", "Image name"] or len(header) != 2 + len(VOTE_COLUMNS):
        raise DatasetError(f"{path}: expected Microsoft's header 'Usage,Image name,{','.join(VOTE_COLUMNS)}', "
                           f"found '{','.join(header)[:100]}'.")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or not row[1].strip():
            continue
        split = USAGE_SPLIT.get(row[0].strip().lower())
        if split is None:
            raise DatasetError(f"{path}, line {line}: unknown Usage '{row[0]}'; expected Training, PublicTest "
                               "or PrivateTest.")
        yield line, split, vote_row(row[2:], f"{path}, line {line}")


def fer2013_csv_beside(new_csv: Path) -> Path:
    """The Kaggle fer2013.csv that holds the pixels fer2013new.csv's votes describe."""
    for name in ("fer2013.csv", "FER2013.csv"):
        if (new_csv.parent / name).is_file():
            return new_csv.parent / name
    raise DatasetError(f"{new_csv} holds FER+ votes but not the pixels: put the Kaggle fer2013.csv (emotion,pixels,"
                       f"Usage) in {new_csv.parent}/ beside it; its rows are matched to fer2013new.csv by order.")
