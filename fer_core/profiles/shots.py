"""Labelled shots from files: a folder per emotion (DIR/happy/*.jpg) or the emotion in the file name (happy_1.jpg).

The CLI and the Analyze page read a person's own photos the same way, so a folder that works in one works in
the other.
"""

from __future__ import annotations

import re
from pathlib import Path

from fer_core.data.emotions import canonical
from fer_core.data.images import IMAGE_EXTENSIONS, read_image_file
from fer_core.profiles.profile import ProfileError


def emotion_from_filename(name: str, class_names: list[str]) -> str | None:
    """The model's class named by a file name's first word (happy_1.jpg, Surprise-2.png), else None."""
    first = re.split(r"[^A-Za-z]+", Path(name).stem.strip())[0] if Path(name).stem else ""
    canon = {canonical(c): c for c in class_names}
    return canon.get(canonical(first)) if first else None


def shots_from_folder(folder, class_names: list[str]) -> dict[str, list]:
    """{emotion: [BGR images]} from DIR/<emotion>/* and from DIR/<emotion>_*.jpg."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ProfileError(f"{folder} is not a folder; give a folder with one sub-folder per emotion "
                           "(e.g. shots/happy/1.jpg) or photos named after their emotion (happy_1.jpg)")
    canon = {canonical(c): c for c in class_names}
    shots: dict[str, list] = {}
    unknown = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
        rel = path.relative_to(folder)
        emotion = canon.get(canonical(rel.parts[0])) if len(rel.parts) > 1 else None
        emotion = emotion or emotion_from_filename(path.name, class_names)
        if emotion is None:
            unknown.append(str(rel))
            continue
        shots.setdefault(emotion, []).append(read_image_file(path))
    if not shots:
        raise ProfileError(f"no labelled photos in {folder}: put them in one sub-folder per emotion "
                           f"({', '.join(class_names)}), or name them like happy_1.jpg"
                           + (f"; not understood: {', '.join(unknown[:5])}" if unknown else ""))
    return shots
