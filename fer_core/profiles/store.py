"""Profiles on the machine that runs the app: one JSON file each in a git-ignored folder beside runs/.

One plain file per profile makes export/import a copy, deleting a profile one unlink, and lets a user see
exactly what is kept: embeddings and metadata, never photos. Nothing here sends anything anywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from fer_core.profiles.profile import Profile, ProfileError, check_name

DEFAULT_PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"     # beside runs/, git-ignored
FORMAT = "emotion-studio-profile"
VERSION = 2                 # 2: pooled convolutional features less the person's neutral face (1: the layer before
                            # the classifier, as they were); a profile's vectors only mean something to its rule
MAX_BYTES = 2_000_000       # a profile is a few tens of kB; a large file is not one


class ProfileFileError(ProfileError):
    """A profile file that cannot be read: corrupt, cut short, or not a profile at all."""


class ProfileNotFound(ProfileError):
    pass


def to_json(profile: Profile) -> dict:
    return {"format": FORMAT, "version": VERSION, "name": profile.name, "model_run": profile.model_run,
            "model_fingerprint": profile.model_fingerprint, "created": profile.created,
            "class_names": list(profile.class_names), "shots": dict(profile.shots),
            "blend": profile.blend, "temperature": profile.temperature,
            "centre": None if profile.centre is None else _floats(profile.centre),
            "prototypes": {c: _floats(p) for c, p in profile.prototypes.items()},
            "head": None if not profile.head else {"classes": list(profile.head["classes"]),
                                                   "weights": _floats(profile.head["weights"]),
                                                   "bias": _floats(profile.head["bias"])}}


def _floats(a) -> list:
    return np.round(np.asarray(a, np.float64), 6).tolist()


def _head(data) -> dict | None:
    """The trained head, checked: one column of weights and one bias per class it names."""
    if not data:
        return None
    head = {"classes": [str(c) for c in data["classes"]], "weights": np.asarray(data["weights"], np.float32),
            "bias": np.asarray(data["bias"], np.float32)}
    n = len(head["classes"])
    if head["weights"].ndim != 2 or head["weights"].shape[1] != n or head["bias"].shape != (n,) \
            or not np.isfinite(head["weights"]).all():
        raise ValueError("the trained head's weights do not match its classes")
    return head


def _centre(data, widths: set) -> np.ndarray | None:
    """The person's neutral face: one finite vector as wide as the prototypes."""
    if data is None:
        return None
    centre = np.asarray(data, np.float32)
    if centre.ndim != 1 or not np.isfinite(centre).all() or (widths and {centre.shape} != widths):
        raise ValueError("the neutral face is not one vector as wide as the prototypes")
    return centre


def from_json(data: dict, where: str) -> Profile:
    """A Profile from parsed JSON, with one clear message for each way a file can be wrong."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProfileFileError(f"{where} is not an Emotion Studio profile (no '\"format\": \"{FORMAT}\"' in it); "
                               "import a file exported by 'Export profile' or 'python -m fer_core profile export'")
    if data.get("version") == 1:
        raise ProfileFileError(f"{where} was made by an earlier version of Calibrate to me, whose vectors this "
                               "version cannot use (it now compares faces in another layer of the model, less the "
                               "person's neutral face); make the profile again from a few shots per emotion")
    if data.get("version") != VERSION:
        raise ProfileFileError(f"{where} is a profile of format version {data.get('version')}, which this app "
                               f"does not read (it reads version {VERSION}); export it again from this app")
    try:
        classes = [str(c) for c in data["class_names"]]
        protos = {str(c): np.asarray(v, np.float32) for c, v in data["prototypes"].items()}
        widths = {p.shape for p in protos.values()}
        if len(widths) > 1 or any(len(w) != 1 or not np.isfinite(p).all() for w, p in zip(widths, protos.values())) \
                or not set(protos) <= set(classes):
            raise ValueError("prototypes are not one vector per known emotion")
        return Profile(name=check_name(str(data["name"])), model_run=str(data["model_run"]),
                       model_fingerprint=str(data["model_fingerprint"]), class_names=classes, prototypes=protos,
                       shots={str(k): int(v) for k, v in data.get("shots", {}).items()},
                       blend=float(data["blend"]), temperature=float(data["temperature"]),
                       created=str(data.get("created", "")), head=_head(data.get("head")),
                       centre=_centre(data.get("centre"), widths))
    except (KeyError, TypeError, ValueError) as e:
        raise ProfileFileError(f"{where} is a damaged profile ({type(e).__name__}: {e}); delete it and make the "
                               "profile again, or import a good copy") from None


def parse_bytes(data: bytes, where: str) -> Profile:
    if len(data) > MAX_BYTES:
        raise ProfileFileError(f"{where} is {len(data):,} bytes, far more than a profile; pick the exported "
                               "profile file (.json)")
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProfileFileError(f"{where} is not readable JSON ({e}); it may be cut short or not a profile: "
                               "export it again, or delete it and make the profile again") from None
    return from_json(parsed, where)


class ProfileStore:
    """List, load, save, rename, delete, export and import profiles in one folder.

    The folder: `root`, else $FER_PROFILES_DIR (a server's or a test's own), else profiles/ beside runs/.
    """

    def __init__(self, root=None):
        self.root = Path(root or os.environ.get("FER_PROFILES_DIR") or DEFAULT_PROFILES_DIR)

    def path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.json"

    def list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted((p.stem for p in self.root.glob("*.json")), key=str.lower)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def load(self, name: str) -> Profile:
        path = self.path(name)
        if not path.is_file():
            have = ", ".join(self.list()) or "none yet"
            raise ProfileNotFound(f"no profile named '{name}' in {self.root} (profiles: {have})")
        return parse_bytes(path.read_bytes(), f"profile file {path}")

    def save(self, profile: Profile, overwrite: bool = True) -> Path:
        """Write atomically (a temporary file, then a rename), so a crash never leaves half a profile."""
        path = self.path(profile.name)
        if path.exists() and not overwrite:
            raise ProfileError(f"a profile named '{profile.name}' exists already; pick another name or delete it")
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".saving-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(to_json(profile), f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def rename(self, old: str, new: str) -> Profile:
        profile = self.load(old)
        new = check_name(new)
        if new == old:
            return profile
        if self.exists(new) and self.path(new).resolve() != self.path(old).resolve():
            raise ProfileError(f"a profile named '{new}' exists already; pick another name or delete it first")
        profile.name = new
        self.path(old).unlink()
        self.save(profile)
        return profile

    def delete(self, name: str) -> None:
        path = self.path(name)
        if not path.is_file():
            raise ProfileNotFound(f"no profile named '{name}' in {self.root}")
        path.unlink()

    def export(self, name: str) -> bytes:
        return json.dumps(to_json(self.load(name)), indent=1).encode("utf-8")

    def import_bytes(self, data: bytes, name: str | None = None, overwrite: bool = False) -> Profile:
        """Store an exported profile (under `name` if given); an existing profile is kept unless overwrite."""
        profile = parse_bytes(data, "the imported file")
        if name:
            profile.name = check_name(name)
        self.save(profile, overwrite=overwrite)
        return profile
