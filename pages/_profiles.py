"""Calibration profiles on the pages: the picker, making a profile from labelled photos, and managing the store.

All the work is in fer_core.profiles; these widgets only ask and show.
"""

from __future__ import annotations

import streamlit as st

from fer_core.errors import UserError
from fer_core.profiles import ProfileStore, make_profile
from fer_core.profiles.shots import emotion_from_filename
from fer_core.runs.defaults import REPO_ROOT

NONE = "(none)"
SCOPES = {"largest": "the largest face", "all": "every face"}


def privacy_note(store: ProfileStore) -> str:
    root = store.root.resolve()
    shown = root.relative_to(REPO_ROOT) if root.is_relative_to(REPO_ROOT) else root   # profiles/, as in the README
    return (f"Profiles are stored on the machine that runs this app, in `{shown}`, as numbers the model "
            "computed from the photos (no photos). Nothing leaves this machine.")


def profile_picker(recognizer, key: str):
    """Sidebar: a profile (or none) and the faces it reads -> (recognizer to use, profile name or None).

    A profile made with another model is refused with its reason; the page then reads without one.
    """
    store = ProfileStore()
    try:
        names = store.list()
    except UserError as e:          # the folder cannot be read
        st.warning(str(e))
        names = []
    if st.session_state.get(f"{key}_profile") not in [NONE, *names]:    # deleted or renamed meanwhile
        st.session_state[f"{key}_profile"] = NONE
    choice = st.selectbox("Calibration profile", [NONE, *names], key=f"{key}_profile",
                          help="A profile made from a few shots of one person reads that person's face better.")
    scope = st.radio("Profile reads", list(SCOPES), format_func=SCOPES.get, key=f"{key}_profile_scope",
                     horizontal=True, disabled=choice == NONE)
    st.caption(privacy_note(store))
    if choice == NONE:
        return recognizer, None
    try:
        return recognizer.with_profile(store.load(choice), scope), choice
    except UserError as e:
        st.warning(f"{e}. Reading without a profile.")
        return recognizer, None


def profile_label(face) -> str:
    return f" (profile: {face.profile})" if getattr(face, "profile", "") else ""


def make_profile_from_photos(recognizer, key: str) -> None:
    """An expander: labelled photos of one person (emotion picked per photo, or read from happy_1.jpg) -> a profile."""
    store = ProfileStore()
    classes = list(recognizer.class_names)
    with st.expander("Make a profile from photos of one person"):
        st.write("Upload a few photos of **one person** per emotion (one face each, or that person the largest "
                 "face). Name files like `happy_1.jpg` and their emotion is read from the name. "
                 + privacy_note(store))
        ups = st.file_uploader("Photos of one person", type=["jpg", "jpeg", "png", "webp", "bmp"],
                               accept_multiple_files=True, key=f"{key}_shots")
        labels = {}
        for i, up in enumerate(ups or []):
            guess = emotion_from_filename(up.name, classes)
            labels[i] = st.selectbox(f"{up.name}", ["(skip)", *classes], key=f"{key}_shot_{i}_{up.name}",
                                     index=1 + classes.index(guess) if guess else 0)
        name = st.text_input("Profile name", key=f"{key}_profile_name", placeholder="e.g. Alice")
        if st.button("Save profile", key=f"{key}_save_profile", disabled=not ups):
            _save(recognizer, store, name, ups, labels)


def _save(recognizer, store: ProfileStore, name: str, ups, labels: dict) -> None:
    from fer_core.data.images import decode_image
    try:
        if name.strip() and store.exists(name):
            raise UserError(f"a profile named '{name.strip()}' exists already; pick another name or delete it below")
        shots: dict[str, list] = {}
        for i, up in enumerate(ups):
            if labels.get(i, "(skip)") != "(skip)":
                shots.setdefault(labels[i], []).append(decode_image(up.getvalue(), up.name))
        profile = make_profile(name, shots, recognizer)
        store.save(profile)
    except UserError as e:
        st.error(str(e))
        return
    st.success(f"Saved profile {profile.summary()}. Pick it under 'Calibration profile' in the sidebar.")


def manage_profiles(key: str) -> None:
    """An expander: rename, delete, export (download) and import profiles."""
    store = ProfileStore()
    with st.expander("Manage profiles"):
        st.caption(privacy_note(store))
        names = store.list()
        if names:
            pick = st.selectbox("Profile", names, key=f"{key}_manage_pick")
            c1, c2, c3 = st.columns(3)
            c1.download_button("Export (one file)", store.export(pick), file_name=f"{pick}.json",
                               mime="application/json", key=f"{key}_export", on_click="ignore")
            if c2.button("Delete", key=f"{key}_delete"):
                store.delete(pick)
                st.rerun()
            new = c3.text_input("Rename to", key=f"{key}_rename_to")
            if c3.button("Rename", key=f"{key}_rename", disabled=not new.strip()):
                _try(lambda: store.rename(pick, new))
        up = st.file_uploader("Import a profile file", type=["json"], key=f"{key}_import")
        if up is not None and st.button("Import", key=f"{key}_import_go"):
            _try(lambda: store.import_bytes(up.getvalue()))


def _try(action) -> None:
    try:
        action()
    except UserError as e:
        st.error(str(e))
        return
    st.rerun()
