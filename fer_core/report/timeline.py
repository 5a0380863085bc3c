"""A video's per-frame CSV (fer_core/serve/video_file.py) as the tables the Video page draws."""

from __future__ import annotations

import pandas as pd


def read_frames(csv_path) -> pd.DataFrame:
    return pd.read_csv(csv_path)


SUMMARY_LABELS = {"face_id": "face", "first_s": "first seen (s)", "last_s": "last seen (s)", "frames": "frames",
                  "main_emotion": "main emotion"}   # face_summary's columns as the Video page heads them


def face_summary(frames: pd.DataFrame) -> pd.DataFrame:
    """One row per face id: first and last time seen, frames, and the emotion it showed most."""
    if frames.empty:
        return pd.DataFrame(columns=["face_id", "first_s", "last_s", "frames", "main_emotion"])
    g = frames.groupby("face_id")
    out = pd.DataFrame({"first_s": g["time_s"].min(), "last_s": g["time_s"].max(), "frames": g.size(),
                        "main_emotion": g["emotion"].agg(lambda s: s.value_counts().idxmax())})
    return out.reset_index().sort_values(["frames", "face_id"], ascending=[False, True])


def probabilities_over_time(frames: pd.DataFrame, face_id: int) -> pd.DataFrame:
    """time_s, emotion, probability rows of one face (the long shape plotly's line chart wants)."""
    face = frames[frames["face_id"] == face_id]
    cols = [c for c in frames.columns if c.startswith("p_")]
    long = face.melt(id_vars=["time_s"], value_vars=cols, var_name="emotion", value_name="probability")
    long["emotion"] = long["emotion"].str[2:]
    return long.sort_values(["emotion", "time_s"])
