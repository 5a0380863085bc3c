"""The folders the app may read datasets and weight files from (the one owner of this setting).

The app can be served to other people, and a path typed into a page is read by the server: without a
limit, anyone who reaches the page could list images of any readable folder or the first line of any
file. The CLI is the machine's own user at the machine and is not limited.

Setting, first found wins: the app's secret `data_roots` (a list of folders in .streamlit/secrets.toml),
the environment's FER_DATA_ROOTS (folders separated by os.pathsep, ':' on Linux and macOS), else the
shared datasets (../shared/data) and `data/` in the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from fer_core.errors import UserError
from fer_core.runs.defaults import REPO_ROOT, SHARED_DATA

ENV = "FER_DATA_ROOTS"
SECRET = "data_roots"
USER_DATA = REPO_ROOT / "data"


class OutsideDataRoots(UserError):
    """A path the app was asked to read lies outside the allowed folders."""


def allowed_roots(configured=None) -> list[Path]:
    """The allowed folders, resolved (symlinks followed); `configured` is the app's secret when set."""
    if configured:
        items = [configured] if isinstance(configured, str) else list(configured)
    elif os.environ.get(ENV, "").strip():
        items = [p for p in os.environ[ENV].split(os.pathsep) if p.strip()]
    else:
        items = [SHARED_DATA, USER_DATA]
    return [Path(p).expanduser().resolve() for p in items]


def describe(roots: list[Path]) -> str:
    return ", ".join(_short(r) for r in roots)


def _short(p: Path) -> str:
    try:
        return os.path.relpath(p)
    except ValueError:          # another drive on Windows
        return str(p)


def check_allowed(path: str | os.PathLike, configured=None) -> Path:
    """The path, resolved, when it lies under an allowed folder; else OutsideDataRoots saying what to do.

    Resolving first means a symlink or `..` cannot lead out of an allowed folder."""
    roots = allowed_roots(configured)
    resolved = Path(path).expanduser().resolve()
    if any(resolved == r or resolved.is_relative_to(r) for r in roots):
        return resolved
    raise OutsideDataRoots(
        f"{path} is outside the folders this app reads data from ({describe(roots)}). Put the dataset "
        f"under one of them, or name its folder in {ENV} (folders separated by '{os.pathsep}') or in "
        f"{SECRET} in .streamlit/secrets.toml, and restart the app.")
