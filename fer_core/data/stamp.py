"""A cheap fingerprint of a dataset path, for caches of what was read from it.

Adding or removing a face changes the modification time of the folder that holds it, not of the folders
above it: a class folder (CK+48/happy/), or one below a split folder (fer2013/train/happy/). So the folder
and its folders two levels down are stamped; a csv is stamped by its own time and size.
"""

from __future__ import annotations

import os
from pathlib import Path


def dataset_stamp(path: str | os.PathLike, depth: int = 2) -> tuple:
    """(relative folder or file, modification time in ns, size) for the path and its folders `depth` down."""
    root = Path(path)
    out = []
    frontier = [root]
    for level in range(depth + 1):
        below = []
        for p in sorted(frontier):
            try:
                s = p.stat()
            except OSError:
                continue
            out.append((str(p.relative_to(root)), s.st_mtime_ns, s.st_size))
            if level < depth and p.is_dir():
                try:
                    below += [c for c in p.iterdir() if c.is_dir()]
                except OSError:
                    pass
        frontier = below
    return tuple(out)
