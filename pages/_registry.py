"""The app's pages, declared once: the entry page (streamlit_app.py) builds its navigation from this list and
Home its links to them (no Streamlit here: plain data the two read)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageEntry:
    path: str                 # the page's file, from the repository root
    title: str
    icon: str
    url_path: str | None      # None: the default page, at the app's root URL
    blurb: str = ""           # what Home's link says after the title; "" = Home does not link to it
    home_column: int = 0      # Home's column of links (0 or 1)


PAGES = (
    PageEntry("pages/home.py", "Home", ":material/home:", None),
    PageEntry("pages/analyze.py", "Analyze photos", ":material/photo_library:", "analyze",
              "upload pictures, see each face's emotion"),
    PageEntry("pages/video.py", "Analyze a video", ":material/movie:", "video",
              "every face followed, emotions over time"),
    PageEntry("pages/webcam.py", "Webcam", ":material/videocam:", "webcam", "live emotions from your camera"),
    PageEntry("pages/train.py", "Train", ":material/model_training:", "train", "a new model on a dataset", 1),
    PageEntry("pages/runs.py", "Runs", ":material/folder_open:", "runs", "every training run and its results", 1),
    PageEntry("pages/compare.py", "Compare", ":material/bar_chart:", "compare", "runs side by side", 1),
    PageEntry("pages/dataset.py", "Dataset", ":material/dataset:", "dataset", "class balance and sample faces"),
)


def home_links(column: int) -> list[PageEntry]:
    """The pages Home links to in one of its two columns, in the order declared."""
    return [p for p in PAGES if p.blurb and p.home_column == column]
