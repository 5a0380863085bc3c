"""Calibrate to me: `python -m bench.calibration [RUN_DIR ...] [--choose] [--draws N] [--quick]`.

For each person, a profile from k = 1, 2, 3 shots per emotion, scored on that person's other photos:
  twface  shots from one elicitation type (theatric, facs or personal_event; neutral shots from the neutral
          photos), tested on the photos of the two other types and the neutral photos not used as shots;
          every type in turn and several random draws of the k photos. Photos go through the app's own path
          (detection, alignment, the largest face; where no face is found the 256-px photo is the face).
          A second, easier line tests the photos of the shots' own type (not the shots): a profile tested on the
          sitting it was made from, where few-shot figures of 80-90% come from; the headline is the first line.
  CK+     people with at least four of the six emotions CK+ shares with FER2013. CK+48 holds one sequence
          per person and emotion, three near-identical last frames each, so no other sequence of the same
          emotion exists: shots are k frames of each sequence and the test is the other frames (k = 1, 2),
          which flatters calibration; a second line tests each emotion with a profile made without it (shots
          of the person's other sequences), which shows what the fallback to the base model costs.
Each model image is embedded once (with its mirror) and every draw reuses the raw vectors, centred on each
draw's neutral shots as make_profile does, so the rule is scored exactly as fer_core.profiles applies it.
Accuracy is the mean over people and draws; macro F1 pools them.

--choose: the grid that fixed BLEND, HEAD_L2 and TEMPERATURE (fer_core/profiles/profile.py), for the trained
head and the prototypes, scored on the development people only (twface performers 01-10); the table's people
are the others.
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import CKPLUS, SHARED, check_run, need, parser, print_machine, read_bgr
from fer_core.data.emotions import canonical
from fer_core.profiles.profile import (BLEND, HEAD_L2, METHOD, TEMPERATURE, blend_probs, centred, fit_head,
                                      head_probs, is_neutral, person_centre, prototype_probs, prototypes_from)
from fer_core.runs.defaults import DEFAULT_RUN, FERPLUS_RUN_ID, RUNS_DIR

TWFACE = SHARED / "twface"
CK_SIX = ("angry", "disgust", "fear", "happy", "sad", "surprise")
DEV_PEOPLE = {f"{i:02d}" for i in range(1, 11)}
TW_TYPES = ("theatric", "facs", "personal_event")


@dataclass
class Photos:
    """One set's photos as the model sees them: labels, groups, embeddings (and mirrored), base answers."""
    person: np.ndarray
    source: np.ndarray          # twface: elicitation type ('none' = neutral); CK+: the sequence
    label: np.ndarray           # index into the model's classes
    emb: np.ndarray             # raw embeddings (the rule centres them on the person's neutral shots)
    emb_mirror: np.ndarray
    neutral: np.ndarray         # per class: is it the neutral class
    base: np.ndarray            # the model's probabilities


def embed_all(rec, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e, p, em = [], [], []
    for i in range(0, len(inputs), 256):
        x = inputs[i:i + 256]
        a, b = rec.embed(x)
        e.append(a), p.append(b), em.append(rec.embed(x[:, :, ::-1, :])[0])
    return np.concatenate(e), np.concatenate(em), np.concatenate(p)


def load_twface(rec, limit_people: int = 0) -> Photos:
    from fer_core.profiles.profile import shot_input
    rows = list(csv.DictReader(open(need(TWFACE / "labels.csv"), newline="", encoding="utf-8")))
    canon = [canonical(c) for c in rec.class_names]
    rows = [r for r in rows if canonical(r["emotion"]) in canon]
    if limit_people:
        keep = sorted({r["person"] for r in rows})[:limit_people]
        rows = [r for r in rows if r["person"] in keep]
    inputs = np.stack([shot_input(rec, read_bgr(TWFACE / r["image"]), r["image"]) for r in rows])
    e, em, p = embed_all(rec, inputs)
    return Photos(np.array([r["person"] for r in rows]), np.array([r["performance"] for r in rows]),
                  np.array([canon.index(canonical(r["emotion"])) for r in rows]), e, em,
                  is_neutral(rec.class_names), p)


def load_ckplus(rec) -> Photos:
    canon = [canonical(c) for c in rec.class_names]
    items = []
    for folder in sorted(need(CKPLUS).iterdir()):
        if folder.is_dir() and canonical(folder.name) in CK_SIX and canonical(folder.name) in canon:
            for f in sorted(folder.glob("*.png")):
                subject, seq, _ = f.stem.split("_")
                items.append((subject, f"{subject}_{seq}", canon.index(canonical(folder.name)), f))
    by_person: dict[str, set] = {}
    for s, _, lab, _ in items:
        by_person.setdefault(s, set()).add(lab)
    items = [it for it in items if len(by_person[it[0]]) >= 4]
    inputs = rec.preprocess_faces([read_bgr(it[3]) for it in items])      # CK+48 crops as shipped
    e, em, p = embed_all(rec, inputs)
    return Photos(np.array([it[0] for it in items]), np.array([it[1] for it in items]),
                  np.array([it[2] for it in items]), e, em, is_neutral(rec.class_names), p)


def dev_mask(ph: Photos, dev: bool) -> np.ndarray:
    return np.array([(p in DEV_PEOPLE) == dev for p in ph.person])


# ---------------------------------------------------------------- who calibrates on what
def twface_splits(ph: Photos, k: int, draws: int, rng, people, same_type: bool = False):
    """(shots, test) per person, elicitation type and draw: k shots per emotion of one type, test the others.
    same_type: test the photos of the shots' own type that are not shots (the easy case; not the headline)."""
    for person in people:
        mine = np.flatnonzero(ph.person == person)
        for kind in TW_TYPES:
            if not (ph.source[mine] == kind).any():
                continue
            for _ in range(draws):
                shots = []
                for lab in np.unique(ph.label[mine]):
                    cand = mine[(ph.label[mine] == lab) & np.isin(ph.source[mine], (kind, "none"))]
                    if len(cand):
                        shots.extend(rng.choice(cand, min(k, len(cand)), replace=False))
                tested = (ph.source[mine] == kind) if same_type else ~np.isin(ph.source[mine], (kind, "none"))
                test = mine[(tested & ~np.isin(mine, shots)) | ((ph.source[mine] == "none") & ~np.isin(mine, shots))]
                yield np.array(shots), test


def ckplus_splits(ph: Photos, k: int, draws: int, rng, people, left_out: bool):
    """Same sequence: k frames of every sequence as shots, its other frames as test.
    left_out: each sequence tested with a profile of the person's other sequences (its emotion has no shots)."""
    for person in people:
        mine = np.flatnonzero(ph.person == person)
        seqs = sorted(set(ph.source[mine]))
        for _ in range(draws):
            picks = {s: rng.choice(mine[ph.source[mine] == s], k, replace=False) for s in seqs
                     if (ph.source[mine] == s).sum() >= k + (0 if left_out else 1)}
            if not left_out:
                shots = np.concatenate(list(picks.values()))
                yield shots, mine[~np.isin(mine, shots)]
                continue
            for held in seqs:
                yield (np.concatenate([v for s, v in picks.items() if s != held]),
                       mine[ph.source[mine] == held])


# ---------------------------------------------------------------- the rules scored
def centred_views(ph: Photos, shots, test):
    """As make_profile and apply_profile see them: the shots and their mirrors, their labels, and the test
    faces, all less the person's neutral face (the mean of the neutral shots and mirrors, else of all shots)."""
    raw = np.concatenate([ph.emb[shots], ph.emb_mirror[shots]])
    labels = np.concatenate([ph.label[shots]] * 2)
    centre = person_centre(raw, ph.neutral[labels])
    return centred(raw, centre), labels, centred(ph.emb[test], centre)


def rule_prototypes(ph: Photos, shots, test, blend: float, temperature: float) -> np.ndarray:
    covered = sorted(set(ph.label[shots]))
    s, labels, t = centred_views(ph, shots, test)
    protos = np.stack([prototypes_from(s[labels == c]) for c in covered])
    return blend_probs(ph.base[test], prototype_probs(protos, t, temperature), covered, blend)


def rule_logistic(ph: Photos, shots, test, blend: float, l2: float) -> np.ndarray:
    """The trained alternative: a softmax regression on the shots' embeddings and mirrors (fit_head)."""
    covered = sorted(set(ph.label[shots]))
    s, labels, t = centred_views(ph, shots, test)
    w, b = fit_head(s, np.array([covered.index(v) for v in labels]), len(covered), l2)
    return blend_probs(ph.base[test], head_probs(w, b, t), covered, blend)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    f1 = []
    for c in np.unique(y_true):
        tp = np.sum((y_pred == c) & (y_true == c))
        denom = np.sum(y_pred == c) + np.sum(y_true == c)
        f1.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1))


def score(ph: Photos, splits, rules: dict) -> dict:
    """Per rule: mean accuracy over (person, draw) and macro F1 of all predictions pooled; 'base' = no profile."""
    accs: dict[str, list] = {name: [] for name in ["base", *rules]}
    preds: dict[str, list] = {name: [] for name in accs}
    truth = []
    for shots, test in splits:
        if not len(test) or not len(shots):
            continue
        truth.append(ph.label[test])
        for name in accs:
            p = ph.base[test] if name == "base" else rules[name](ph, shots, test)
            pred = p.argmax(1)
            accs[name].append(float(np.mean(pred == ph.label[test])))
            preds[name].append(pred)
    if not truth:
        return {}
    y = np.concatenate(truth)
    return {name: (float(np.mean(accs[name])), macro_f1(y, np.concatenate(preds[name])), len(accs[name]))
            for name in accs}


# ---------------------------------------------------------------- choosing the constants (development people)
BLENDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
TEMPERATURES = (0.03, 0.05, 0.1, 0.2, 0.3)
L2S = (0.001, 0.01, 0.1)


def dev_grid(ph: Photos, draws: int) -> dict:
    """Dev-people accuracy (mean over k = 1, 2, 3) of every grid point of both rules."""
    people = sorted(DEV_PEOPLE & set(ph.person))
    rules = {("prototypes", w, t): (lambda ph, s, te, w=w, t=t: rule_prototypes(ph, s, te, w, t))
             for w in BLENDS for t in TEMPERATURES}
    rules.update({("logistic", w, l2): (lambda ph, s, te, w=w, l2=l2: rule_logistic(ph, s, te, w, l2))
                  for w in BLENDS for l2 in L2S})
    per_k = [score(ph, twface_splits(ph, k, draws, np.random.default_rng(k), people), rules) for k in (1, 2, 3)]
    return {key: float(np.mean([r[key][0] for r in per_k])) for key in ["base", *rules]}


def print_choice(grids: list[dict]) -> None:
    mean = {key: float(np.mean([g[key] for g in grids])) for key in grids[0]}
    print(f"development people (twface {min(DEV_PEOPLE)}-{max(DEV_PEOPLE)}), accuracy averaged over k = 1, 2, 3 "
          f"and the models: no profile {100 * mean.pop('base'):.1f}%")
    for rule in ("prototypes", "logistic"):
        keys = [k for k in mean if k[0] == rule]
        best = max(keys, key=mean.get)
        print(f"  {rule:10s} best {100 * mean[best]:.1f}% at blend {best[1]}, "
              f"{'temperature' if rule == 'prototypes' else 'l2'} {best[2]}")
        for w in BLENDS:
            print(f"    blend {w:.1f}: " + "  ".join(f"{100 * mean[(rule, w, v)]:.1f}"
                                                  for v in (TEMPERATURES if rule == "prototypes" else L2S)))
    print(f"  in code now: {rule_line()}")


# ---------------------------------------------------------------- the table
def profile_rule(ph: Photos, shots, test) -> np.ndarray:
    """The rule fer_core.profiles applies, with its constants."""
    if METHOD == "logistic":
        return rule_logistic(ph, shots, test, BLEND, HEAD_L2)
    return rule_prototypes(ph, shots, test, BLEND, TEMPERATURE)


def rule_line() -> str:
    what = f"temperature {TEMPERATURE}" if METHOD == "prototypes" else f"l2 {HEAD_L2}"
    return f"{METHOD}, blend {BLEND}, {what}"


def table_rows(name: str, tw: Photos, ck: Photos | None, draws: int) -> list[str]:
    """Markdown rows: model, set, k, accuracy and macro F1 without and with the profile, people / profiles."""
    rule = {"profile": profile_rule}
    tw_people = sorted(set(tw.person) - DEV_PEOPLE)
    rows = [("twface, other elicitation types", k, len(tw_people),
             score(tw, twface_splits(tw, k, draws, np.random.default_rng(k), tw_people), rule)) for k in (1, 2, 3)]
    rows += [("twface, same elicitation type as the shots (other photos; not the headline)", k, len(tw_people),
              score(tw, twface_splits(tw, k, draws, np.random.default_rng(k), tw_people, same_type=True), rule))
             for k in (1, 2)]
    if ck is not None:
        ck_people = sorted(set(ck.person))
        rows += [("CK+, other frames of the same sequence", k, len(ck_people),
                  score(ck, ckplus_splits(ck, k, draws, np.random.default_rng(k), ck_people, False), rule))
                 for k in (1, 2)]
        rows += [("CK+, tested emotion left out of the profile", k, len(ck_people),
                  score(ck, ckplus_splits(ck, k, draws, np.random.default_rng(k), ck_people, True), rule))
                 for k in (1, 2, 3)]
    return [f"| {name} | {set_name} | {k} | {100 * r['base'][0]:.1f}% | **{100 * r['profile'][0]:.1f}%** | "
            f"{100 * r['base'][1]:.1f}% | {100 * r['profile'][1]:.1f}% | {people} / {r['base'][2]} |"
            for set_name, k, people, r in rows if r]


def adaptation_seconds(rec, repeats: int = 5) -> tuple[float, float, int]:
    """make_profile on 21 real photos (3 per emotion of one held-out performer), median of several runs."""
    from fer_core.profiles.profile import make_profile, shot_input
    rows = list(csv.DictReader(open(TWFACE / "labels.csv", newline="", encoding="utf-8")))
    shots: dict[str, list] = {}
    for r in rows:
        if r["person"] == "11" and r["performance"] in ("facs", "none") and len(shots.get(r["emotion"], [])) < 3:
            shots.setdefault(r["emotion"], []).append(read_bgr(TWFACE / r["image"]))
    make_profile("timing", shots, rec)            # first call traces the embedding function
    times, finding = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        make_profile("timing", shots, rec)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        [shot_input(rec, img, "shot") for imgs in shots.values() for img in imgs]
        finding.append(time.perf_counter() - t0)
    return statistics.median(times), statistics.median(finding), sum(len(v) for v in shots.values())


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0], run_dir=False)
    p.add_argument("runs", nargs="*", default=[str(DEFAULT_RUN), str(RUNS_DIR / FERPLUS_RUN_ID)])
    p.add_argument("--choose", action="store_true", help="the development grid that chose BLEND and TEMPERATURE")
    p.add_argument("--draws", type=int, default=3, help="random draws of the shots per person and source")
    a = p.parse_args(argv)
    from fer_core.serve.detectors import make_detector
    from fer_core.serve.recognizer import EmotionRecognizer
    print_machine()
    grids, lines, timing = [], [], []
    for run in a.runs:
        run_dir = check_run(run)
        rec = EmotionRecognizer.from_run(run_dir, make_detector(a.detector))
        tw = load_twface(rec, limit_people=12 if a.quick else 0)
        if a.choose:
            grids.append(dev_grid(tw, 1 if a.quick else a.draws))
            continue
        ck = None if a.quick else load_ckplus(rec)
        lines += table_rows(Path(run_dir).name, tw, ck, 1 if a.quick else a.draws)
        timing.append((Path(run_dir).name, *adaptation_seconds(rec)))
    if a.choose:
        print_choice(grids)
        return 0
    print(f"profile rule: {rule_line()} (chosen on twface "
          f"{min(DEV_PEOPLE)}-{max(DEV_PEOPLE)}, who are not scored below)")
    print("| model | people, test photos | shots per emotion | accuracy, no profile | accuracy, profile | "
          "macro F1, no profile | macro F1, profile | people / profiles scored |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    for name, seconds, finding, n in timing:
        print(f"adaptation ({name}): {1000 * seconds:.0f} ms for {n} whole photos, of which {1000 * finding:.0f} ms "
              f"finding and aligning the faces, the rest one model call for the shots and their mirrors and the "
              f"head's training (medians of 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
