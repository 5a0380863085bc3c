"""`python -m fer_core profile create|list|delete|rename|export|import`: the profile store from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_profile_commands(sub) -> None:
    p = sub.add_parser("profile", help="calibration profiles: a few shots of one person make the model read them "
                                       "better (stored on this machine only)")
    p.add_argument("--profiles-dir", default=None, help="where profiles live (default: profiles/ beside runs/)")
    ps = p.add_subparsers(dest="profile_command", required=True)
    c = ps.add_parser("create", help="make a profile from labelled photos of one person")
    c.add_argument("name")
    c.add_argument("--shots", required=True, help="folder: one sub-folder per emotion (DIR/happy/1.jpg), or "
                                                  "photos named after their emotion (happy_1.jpg)")
    c.add_argument("--run", default=None, help="run folder of the model (default: the app's default model)")
    c.add_argument("--overwrite", action="store_true", help="replace a profile of the same name")
    q = ps.add_parser("list", help="the stored profiles")
    q.add_argument("--json", action="store_true")
    ps.add_parser("delete", help="delete a profile (its one file)").add_argument("name")
    r = ps.add_parser("rename", help="rename a profile")
    r.add_argument("old")
    r.add_argument("new")
    e = ps.add_parser("export", help="write a profile as one file to share or back up")
    e.add_argument("name")
    e.add_argument("--out", default=None, help="file to write (default: NAME.json here; '-' = standard output)")
    i = ps.add_parser("import", help="store a profile file made by export")
    i.add_argument("file")
    i.add_argument("--name", default=None, help="store it under this name")
    i.add_argument("--overwrite", action="store_true", help="replace a profile of the same name")


def add_profile_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, metavar="NAME", help="read faces with this calibration profile")
    p.add_argument("--profile-faces", default="largest", choices=["largest", "all"],
                   help="the faces the profile reads: the largest in each image/frame, or all")
    p.add_argument("--profiles-dir", default=None, help="where profiles live (default: profiles/ beside runs/)")


def with_profile(rec, a):
    """The recognizer with --profile applied (a profile of another model is refused with a clear message)."""
    if not getattr(a, "profile", None):
        return rec
    from fer_core.profiles.store import ProfileStore
    return rec.with_profile(ProfileStore(a.profiles_dir).load(a.profile), a.profile_faces)


def cmd_profile(a) -> int:
    from fer_core.profiles.store import ProfileStore
    store = ProfileStore(a.profiles_dir)
    if a.profile_command == "create":
        return _create(a, store)
    if a.profile_command == "list":
        return _list(a, store)
    if a.profile_command == "delete":
        store.delete(a.name)
        print(f"deleted profile '{a.name}' ({store.path(a.name)})")
    elif a.profile_command == "rename":
        store.rename(a.old, a.new)
        print(f"renamed profile '{a.old}' to '{a.new}'")
    elif a.profile_command == "export":
        data = store.export(a.name)
        if a.out == "-":
            sys.stdout.write(data.decode("utf-8"))
            return 0
        out = Path(a.out or f"{a.name}.json")
        out.write_bytes(data)
        print(f"wrote {out}")
    elif a.profile_command == "import":
        profile = store.import_bytes(Path(a.file).read_bytes(), a.name, a.overwrite)
        print(f"imported profile '{profile.name}' into {store.root}")
    return 0


def _create(a, store) -> int:
    import time

    from fer_core.profiles.profile import ProfileError, make_profile
    from fer_core.profiles.shots import shots_from_folder
    from fer_core.runs.defaults import DEFAULT_RUN
    from fer_core.serve.recognizer import EmotionRecognizer
    if store.exists(a.name) and not a.overwrite:
        raise ProfileError(f"a profile named '{a.name}' exists already; pick another name, or add --overwrite")
    rec = EmotionRecognizer.from_run(a.run or DEFAULT_RUN)
    shots = shots_from_folder(a.shots, rec.class_names)
    t0 = time.perf_counter()
    profile = make_profile(a.name, shots, rec)
    seconds = time.perf_counter() - t0
    path = store.save(profile)
    print(f"made profile {profile.summary()} in {seconds:.2f} s")
    missing = [c for c in rec.class_names if not profile.shots.get(c)]
    if missing:
        print(f"note: no shots of {', '.join(missing)}: for these the model answers as without a profile")
    print(path)
    return 0


def _list(a, store) -> int:
    names = store.list()
    if a.json:
        from fer_core.profiles.store import to_json
        rows = []
        for n in names:
            d = to_json(store.load(n))
            rows.append({k: v for k, v in d.items() if k != "prototypes"})
        print(json.dumps(rows, indent=2))
        return 0
    if not names:
        print(f"no profiles in {store.root}")
    for n in names:
        print(store.load(n).summary())
    return 0
