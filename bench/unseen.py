"""How a model reads people it never trained on: `python -m bench.unseen [RUN_DIR ...] [--json]`.

Two sets no general model here trains on or is selected on, so they measure what a user gets on a stranger:
  CK+     all 927 CK+48 faces of the six emotions FER2013 and CK+ share (contempt left out), cropped as CK+
          ships them; a face answered "neutral" counts as wrong, as it would for a user
  twface  all 1,232 posed photos of 29 performers (7 classes), through the app's own path: detection,
          alignment, the largest face; a photo where no face is found counts as wrong and is counted apart

Per set: accuracy, macro F1, and the recall of the two emotions models miss most (disgust, fear), of the answers
the app gives (the run's calibration applied: its logit adjustment changes which emotion wins) and, for CK+, of
the model's own probabilities beside them.
"""

from __future__ import annotations

import csv
import json
import sys
import time

import numpy as np

from bench.common import CKPLUS, SHARED, check_run, need, parser, print_machine, read_bgr
from fer_core.data.emotions import canonical
from fer_core.report.evaluation import classification_metrics
from fer_core.runs.defaults import DEFAULT_RUN, FERPLUS_RUN_ID, RUNS_DIR

TWFACE = SHARED / "twface"
CK_SIX = ("anger", "disgust", "fear", "happy", "sadness", "surprise")
WATCHED = ("disgust", "fear")


def score_ckplus(run_dir) -> tuple[dict, dict]:
    """(the app's answers, the model's own): the same without a calibration that changes answers."""
    from fer_core.report.evaluate import evaluate_run
    need(CKPLUS)
    r = evaluate_run(run_dir, data=str(CKPLUS), split="all", classes=list(CK_SIX))
    return ({**r, **r["as_shown"]} if r.get("as_shown") else r), r


def twface_photos(limit: int = 0) -> list[tuple[str, str]]:
    rows = list(csv.DictReader(open(need(TWFACE / "labels.csv"), newline="", encoding="utf-8")))
    if limit:
        rows = rows[:: max(1, len(rows) // limit)][:limit]
    return [(r["image"], r["emotion"]) for r in rows]


def score_twface(run_dir, limit: int = 0) -> dict:
    """The app's photo path on each photo; -> metrics over the model's classes, plus photos with no face."""
    from fer_core.serve.recognizer import EmotionRecognizer
    rec = EmotionRecognizer.from_run(run_dir)
    canon = [canonical(c) for c in rec.class_names]
    y_true, probs, no_face = [], [], 0
    t0 = time.perf_counter()
    for image, emotion in twface_photos(limit):
        if canonical(emotion) not in canon:
            continue
        faces = rec.analyze(read_bgr(TWFACE / image))
        p = np.zeros(len(canon) + 1, np.float32)          # last column: no face found (never right)
        if faces:
            largest = max(faces, key=lambda f: f.box[2] * f.box[3])
            p[:-1] = [largest.probabilities[c] for c in rec.class_names]
        else:
            no_face += 1
            p[-1] = 1.0
        y_true.append(canon.index(canonical(emotion)))
        probs.append(p)
    m = classification_metrics(np.array(y_true), np.stack(probs), [*rec.class_names, "(no face)"])
    m.update(no_face=no_face, seconds=round(time.perf_counter() - t0, 1))
    return m


def recall(m: dict, emotion: str) -> float | None:
    for name, figures in m["per_class"].items():
        if canonical(name) == canonical(emotion):
            return figures["recall"]
    return None


def line(set_name: str, m: dict) -> str:
    watched = ", ".join(f"{e} recall {100 * recall(m, e):.1f}%" for e in WATCHED if recall(m, e) is not None)
    extra = f", no face found in {m['no_face']}" if "no_face" in m else ""
    return (f"  {set_name:7s} {m['num_samples']:5d} faces: accuracy {100 * m['accuracy']:.1f}%, "
            f"macro F1 {100 * m['macro_f1']:.1f}%, {watched}{extra}")


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0], run_dir=False)
    p.add_argument("runs", nargs="*", default=[str(DEFAULT_RUN), str(RUNS_DIR / FERPLUS_RUN_ID)])
    p.add_argument("--json", action="store_true", help="one JSON object per run instead of text")
    a = p.parse_args(argv)
    if not a.json:
        print_machine()
    for run in a.runs:
        run_dir = check_run(run)
        ck, ck_own = score_ckplus(run_dir)
        tw = score_twface(run_dir, limit=70 if a.quick else 0)
        if a.json:
            print(json.dumps({"run": str(run_dir), "ckplus": ck, "twface": tw}))
            continue
        print(f"{run_dir.name} (as the app answers):")
        print(line("CK+", ck))
        print(line("twface", tw))
        if ck is not ck_own:
            print(line("CK+", ck_own).replace("CK+    ", "CK+ (the model's own, no logit adjustment)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
