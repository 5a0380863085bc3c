"""Dataset loaders. Every format ends up in one in-memory form, `Dataset`.

Images are kept as grayscale uint8 `image_size` x `image_size` (48 by default):
FER2013 and CK+48 are 48x48 grayscale already, and user folders are converted,
so every backbone sees the same input and a dataset of 36k faces fits in ~80 MB.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from fer_core.data import ferplus
from fer_core.data.dataset import Dataset, DatasetError  # noqa: F401 (re-exported)
from fer_core.data.emotions import FER2013_CLASSES
from fer_core.data.images import IMAGE_EXTENSIONS, ImageError, read_image_file, to_gray
from fer_core.progress import Progress

FER_PREFIX_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
CKPLUS_SUBJECT = re.compile(r"^(S\d+)_")


# ---------------------------------------------------------------- detection
def _class_dirs(path: Path) -> list[Path]:
    return sorted([d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")], key=lambda d: d.name)


def _image_files(d: Path) -> list[Path]:
    return sorted([p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS])


def detect_format(path: str | os.PathLike) -> str:
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"dataset path not found: {path}. Give a FER2013 csv, or a folder of class folders.")
    if ferplus.is_ferplus_folder(p):
        return "ferplus-folders"
    if ferplus.ferplus_csv_in(p) is not None:
        return "ferplus-csv"
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return "fer2013-csv"
        raise DatasetError(f"{path} is a file but not a .csv; give the FER2013 csv or a folder of class folders.")
    subdirs = _class_dirs(p)
    names = {d.name.lower() for d in subdirs}
    if {"train", "test"} <= names:
        train = next(d for d in subdirs if d.name.lower() == "train")
        for cd in _class_dirs(train):
            files = _image_files(cd)
            if files:
                prefix = files[0].name.split("_")[0]
                return "fer2013-folders" if prefix in FER_PREFIX_SPLIT else "train-test-folders"
        return "train-test-folders"
    if len(subdirs) == 1 and not _image_files(p) and _class_dirs(subdirs[0]):
        return detect_format(subdirs[0])   # e.g. ckplus/ -> ckplus/CK+48/
    if not subdirs:
        raise DatasetError(f"{path} has no class sub-folders. Put each emotion's images in its own folder, "
                           f"e.g. {path}/happy/*.jpg.")
    for cd in subdirs:
        files = _image_files(cd)
        if files:
            return "ckplus" if all(CKPLUS_SUBJECT.match(f.name) for f in files[:20]) else "image-folder"
    return "image-folder"


def _descend_single(p: Path) -> Path:
    subdirs = _class_dirs(p)
    if len(subdirs) == 1 and not _image_files(p) and _class_dirs(subdirs[0]) and \
            not {"train", "test"} <= {d.name.lower() for d in _class_dirs(p)}:
        return _descend_single(subdirs[0])
    return p


# ---------------------------------------------------------------- readers
def _read_gray(path: Path, size: int):
    """-> (image or None, original (w, h), problem or None)."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:   # cv2 cannot read it (or an odd format): fall back to Pillow's messages
        try:
            img = to_gray(read_image_file(path))
        except ImageError as e:
            return None, None, str(e)
    h, w = img.shape[:2]
    if (w, h) != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if w > size else cv2.INTER_LINEAR)
    return img, (w, h), None


def read_many(files: list[Path], size: int, label: str, progress_cb=None):
    imgs, sizes, problems, ok = [], Counter(), [], []
    prog = Progress(f"loading {label}", len(files), callback=progress_cb)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for i, (img, wh, problem) in enumerate(pool.map(lambda f: _read_gray(f, size), files, chunksize=256)):
            prog.update()
            if img is None:
                problems.append(f"unreadable image skipped: {files[i]} ({problem})")
                continue
            imgs.append(img)
            sizes[wh] += 1
            ok.append(i)
    return imgs, ok, sizes, problems


def _load_class_folders(root: Path):
    """-> files, labels, class_names, problems for root/<class>/*."""
    class_dirs = _class_dirs(root)
    files, labels, class_names, problems = [], [], [], []
    for cd in class_dirs:
        fs = _image_files(cd)
        if not fs:
            problems.append(f"class folder '{cd.name}' has no images; the class is left out")
            continue
        class_names.append(cd.name)
        files += fs
        labels += [len(class_names) - 1] * len(fs)
    return files, labels, class_names, problems


SPLIT_WORDS = re.compile(r"(^|[^a-z])(train|training|test|testing|val|valid|validation|publictest|privatetest)"
                         r"($|[^a-z])", re.IGNORECASE)


def split_name_warnings(class_names: list[str]) -> list[str]:
    """Folders named like split parts, read as classes, make a classifier of 'train' vs 'test': say so."""
    looks = [c for c in class_names if SPLIT_WORDS.search(c.replace("FER2013", "_"))]
    if not looks:
        return []
    return [f"the sub-folders {', '.join(looks)} look like split names, not emotions, so they were read as "
            "classes. Point at a folder whose sub-folders are the emotions (e.g. train/ with train/happy/...), "
            "use a train/ + test/ pair of class folders, or Microsoft's FER+ layout with all three of "
            "FER2013Train/, FER2013Valid/ and FER2013Test/."]


def load_image_folder(path, size: int = 48, progress_cb=None) -> Dataset:
    root = _descend_single(Path(path))
    files, labels, class_names, problems = _load_class_folders(root)
    if not files:
        raise DatasetError(f"no images found in the class folders of {path} "
                           f"(looked for {', '.join(IMAGE_EXTENSIONS)}).")
    imgs, ok, sizes, read_problems = read_many(files, size, root.name, progress_cb)
    files = [files[i] for i in ok]
    labels = np.array([labels[i] for i in ok], dtype=np.int64)
    problems += split_name_warnings(class_names)
    fmt = "ckplus" if files and all(CKPLUS_SUBJECT.match(f.name) for f in files) else "image-folder"
    groups = np.array([CKPLUS_SUBJECT.match(f.name).group(1) for f in files]) if fmt == "ckplus" else None
    return Dataset(np.stack(imgs) if imgs else np.zeros((0, size, size), np.uint8), labels, class_names,
                   [str(f.relative_to(root)) for f in files], fmt, str(root), None, groups,
                   problems + read_problems, sizes)


def load_train_test_folders(path, size: int = 48, progress_cb=None) -> Dataset:
    """train/<class>/ + test/<class>/. FER2013's file prefixes restore its official three-way split."""
    root = Path(path)
    parts = {d.name.lower(): d for d in _class_dirs(root)}
    train_files, train_labels, classes, problems = _load_class_folders(parts["train"])
    test_files, test_labels_raw, test_classes, test_problems = _load_class_folders(parts["test"])
    problems = [f"train/{p}" for p in problems] + [f"test/{p}" for p in test_problems]
    missing = [c for c in test_classes if c not in classes]
    if missing:
        problems.append(f"test classes not in train, left out: {', '.join(missing)}")
    keep = [i for i, y in enumerate(test_labels_raw) if test_classes[y] in classes]
    test_files = [test_files[i] for i in keep]
    test_labels = [classes.index(test_classes[test_labels_raw[i]]) for i in keep]
    files = train_files + test_files
    labels = train_labels + test_labels
    if not files:
        raise DatasetError(f"no images found under {root}/train and {root}/test.")
    imgs, ok, sizes, read_problems = read_many(files, size, root.name, progress_cb)
    files = [files[i] for i in ok]
    labels = np.array([labels[i] for i in ok], dtype=np.int64)
    fer = all(f.name.split("_")[0] in FER_PREFIX_SPLIT for f in files)
    if fer:
        splits = np.array([FER_PREFIX_SPLIT[f.name.split("_")[0]] for f in files])
    else:
        splits = np.array(["train" if f.parts[-3].lower() == "train" else "test" for f in files])
    return Dataset(np.stack(imgs), labels, classes, [str(f.relative_to(root)) for f in files],
                   "fer2013-folders" if fer else "train-test-folders", str(root), splits, None,
                   problems + read_problems, sizes)


def load_fer2013_csv(path, size: int = 48, progress_cb=None) -> Dataset:
    """The Kaggle fer2013.csv: emotion,pixels,Usage with 48x48 space-separated pixels."""
    usage_split = {"training": "train", "publictest": "val", "privatetest": "test"}
    imgs, labels, splits, sources, problems = [], [], [], [], []
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"cannot open {path}: {e.strerror or e}") from None
    with f:
        reader = csv.DictReader(f)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "emotion" not in header or "pixels" not in header:
            raise DatasetError(f"{path}: expected the FER2013 csv header 'emotion,pixels,Usage', "
                               f"found '{','.join(reader.fieldnames or [])}'.")
        reader.fieldnames = header
        rows = list(reader)
    prog = Progress(f"parsing {Path(path).name}", len(rows), callback=progress_cb)
    for i, row in enumerate(rows):
        line = i + 2  # 1-based, after the header
        prog.update()
        try:
            y = int(row["emotion"])
            if not 0 <= y < len(FER2013_CLASSES):
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"row {line}: unknown emotion label {row.get('emotion')!r} (expected 0-6); row skipped")
            continue
        try:
            px = np.array((row["pixels"] or "").split(), dtype=np.float32)
            side = int(round(np.sqrt(px.size)))
            if px.size == 0 or side * side != px.size or px.min() < 0 or px.max() > 255:
                raise ValueError
        except ValueError:
            problems.append(f"row {line}: bad 'pixels' value (need a square number of 0-255 integers); row skipped")
            continue
        img = px.reshape(side, side).astype(np.uint8)
        if side != size:
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        usage = (row.get("usage") or "Training").strip().lower()
        imgs.append(img)
        labels.append(y)
        splits.append(usage_split.get(usage, "train"))
        sources.append(f"row {line}")
    if not imgs:
        raise DatasetError(f"{path}: no usable rows" + (f" ({problems[0]})" if problems else "."))
    return Dataset(np.stack(imgs), np.array(labels, dtype=np.int64), list(FER2013_CLASSES), sources,
                   "fer2013-csv", str(path), np.array(splits), None, problems,
                   Counter({(48, 48): len(imgs)}))


# ---------------------------------------------------------------- FER+ (votes: fer_core/ferplus.py)
def load_ferplus_folders(root, size: int = 48, label_mode: str = "majority", progress_cb=None) -> Dataset:
    """Microsoft's FER2013Train/Valid/Test folders, each with its images and label.csv."""
    root = Path(root)
    parts, problems = [], []
    for folder, split in ferplus.FOLDER_SPLIT.items():
        d = root / folder
        if not (d / "label.csv").is_file():
            raise DatasetError(f"{d}: no label.csv. A FER+ folder holds FER2013Train/, FER2013Valid/ and "
                               "FER2013Test/, each with its images and Microsoft's label.csv.")
        rows = ferplus.read_label_csv(d / "label.csv")
        present = [(name, v) for name, v in rows if (d / name).is_file()]
        if len(present) < len(rows):
            problems.append(f"{folder}: {len(rows) - len(present)} faces in label.csv have no image file")
        imgs, ok, _, read_problems = read_many([d / n for n, _ in present], size, folder, progress_cb)
        problems += read_problems
        parts.append((split, imgs, [present[i][1] for i in ok], [f"{folder}/{present[i][0]}" for i in ok]))
    return ferplus.assemble(parts, label_mode, "ferplus-folders", str(root), problems)


def load_ferplus_csv(new_csv, size: int = 48, label_mode: str = "majority", progress_cb=None) -> Dataset:
    """Microsoft's fer2013new.csv (votes) + the Kaggle fer2013.csv beside it (pixels), joined by row order."""
    new_csv = Path(new_csv)
    pixels = load_fer2013_csv(ferplus.fer2013_csv_beside(new_csv), size, progress_cb)
    row_of = {int(s.split()[1]): i for i, s in enumerate(pixels.sources)}   # "row N" of fer2013.csv
    parts = {s: ([], [], []) for s in ("train", "val", "test")}
    for line, usage, votes in ferplus.read_new_csv(new_csv):
        if line not in row_of:
            continue                               # that fer2013.csv row was unusable (listed in problems)
        imgs, part_votes, sources = parts[usage]
        imgs.append(pixels.images[row_of[line]])
        part_votes.append(votes)
        sources.append(f"row {line}")
    return ferplus.assemble([(s, *parts[s]) for s in parts], label_mode, "ferplus-csv", str(new_csv),
                            pixels.problems)


def load_dataset(path, size: int = 48, progress_cb=None, label_mode: str = "majority") -> Dataset:
    """Any supported dataset, detected from its layout."""
    fmt = detect_format(path)
    if label_mode not in ferplus.LABEL_MODES:
        raise DatasetError(f"unknown label mode '{label_mode}'; use {' or '.join(ferplus.LABEL_MODES)}.")
    if label_mode != "majority" and not fmt.startswith("ferplus"):
        raise DatasetError(f"label mode '{label_mode}' needs annotator votes, which only FER+ has; {path} is "
                           f"{fmt}. Use label mode majority, or point --data at a FER+ folder.")
    if fmt == "ferplus-folders":
        return load_ferplus_folders(path, size, label_mode, progress_cb)
    if fmt == "ferplus-csv":
        return load_ferplus_csv(ferplus.ferplus_csv_in(Path(path)), size, label_mode, progress_cb)
    if fmt == "fer2013-csv":
        ds = load_fer2013_csv(path, size, progress_cb)
    elif fmt in ("fer2013-folders", "train-test-folders"):
        p = _descend_single(Path(path))
        ds = load_train_test_folders(p, size, progress_cb)
    else:
        ds = load_image_folder(path, size, progress_cb)
    return ds


def check_trainable(ds: Dataset) -> None:
    """Refuse, before any training starts, what cannot be trained on."""
    present = sorted(set(ds.labels.tolist()))
    if len(present) < 2:
        only = ds.class_names[present[0]] if present else "none"
        raise DatasetError(f"{ds.path}: only one class with images ({only}); a classifier needs at least two "
                           "class folders with images.")
    if len(ds) < 10:
        raise DatasetError(f"{ds.path}: only {len(ds)} usable images; that is too few to train on.")
