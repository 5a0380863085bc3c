"""Where an uploaded video, its annotated copy and its CSV live while a user looks at them, and their removal.

Why: uploads used to stay in the temporary folder for good, while the app says elsewhere that it stores
nothing. Each session's files are removed when the session ends, and any left over (a server killed, a session
that never ended) once they are KEEP_SECONDS old: every visit to the Video page sweeps the folder.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
import weakref
from pathlib import Path

KEEP_SECONDS = 60 * 60          # the longest an uploaded video and its outputs stay on the server
WORK = Path(tempfile.gettempdir()) / "emotion-studio-videos"


def keep_label() -> str:
    """KEEP_SECONDS as the page says it."""
    minutes = KEEP_SECONDS // 60
    return f"{minutes // 60} hour{'s' if minutes >= 120 else ''}" if minutes % 60 == 0 else f"{minutes} minutes"


def _remove(folders: set) -> None:
    for f in list(folders):
        shutil.rmtree(f, ignore_errors=True)
        folders.discard(f)


class SessionFolders:
    """The work folders of one session. Kept in the session's state: when the session ends its state is
    dropped, this object with it, and the folders are removed (also when the server process exits)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or WORK)
        self.token = secrets.token_hex(6)        # the session's own folders: another session's upload of the
        self.folders: set[str] = set()           # same file is not removed with this one
        self._finalizer = weakref.finalize(self, _remove, self.folders)

    def new(self, key: str) -> Path:
        """A fresh folder for one upload; the session's earlier uploads are removed (one video at a time)."""
        _remove(self.folders)
        folder = self.root / f"{self.token}-{key}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folders.add(str(folder))
        return folder

    def close(self) -> None:
        self._finalizer()


def remove_expired(root: Path | None = None, keep_seconds: float | None = None) -> list[str]:
    """Removes work folders last written more than keep_seconds (KEEP_SECONDS) ago; returns their names."""
    root, now = Path(root or WORK), time.time()
    keep_seconds = KEEP_SECONDS if keep_seconds is None else keep_seconds
    if not root.is_dir():
        return []
    gone = []
    for folder in root.iterdir():
        try:
            newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])
        except OSError:
            continue
        if now - newest > keep_seconds:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder.name)
    return gone
