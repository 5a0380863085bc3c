"""`python -m fer_core COMMAND ...`: dataset, train, resume, run, evaluate, runs, predict, video, kfold, results,
export, calibrate.

Errors a user can fix print one line (`error: ...`) and exit non-zero; no tracebacks
unless FER_DEBUG=1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from fer_core.config import DEFAULT_RUNS_DIR, TrainConfig, options
from fer_core.runs import store


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {s!r}")


def _sizes(s: str) -> list[int]:
    try:
        sizes = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected input sizes in pixels separated by commas, e.g. 40,48,56,64; "
                                         f"got {s!r}")
    return sizes


def add_train_args(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig option, generated from its declaration (fer_core/config.py)."""
    for name, (f, opt) in options().items():
        flag = "--" + name.replace("_", "-")
        kwargs = dict(dest=name, default=f.default, help=opt.help)
        if name == "data":
            kwargs.update(required=True, default=None)
        if isinstance(f.default, bool):
            kwargs.update(type=_bool, metavar=opt.metavar or "on|off")
        elif isinstance(f.default, (int, float)):
            kwargs.update(type=type(f.default), metavar=opt.metavar)
        if opt.choices:
            kwargs["choices"] = list(opt.choices)
        p.add_argument(flag, *opt.flags, **kwargs)


def config_from_args(a) -> TrainConfig:
    fields = TrainConfig().to_dict().keys()
    return TrainConfig(**{k: getattr(a, k) for k in fields if hasattr(a, k)})


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from fer_core.serve.detectors import DEFAULT_DETECTOR, DETECTORS
    p.add_argument("--run", default=None, help="run folder of the model (default: the app's default model)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    p.add_argument("--min-face-size", type=int, default=20, help="smallest face in pixels")
    p.add_argument("--sensitivity", type=float, default=0.5, help="0..1: higher finds more faces, and more false ones")


def _recognizer(a):
    from fer_core.profile_commands import with_profile
    from fer_core.runs.defaults import DEFAULT_RUN
    from fer_core.serve.detectors import make_detector
    from fer_core.serve.recognizer import EmotionRecognizer
    return with_profile(EmotionRecognizer.from_run(a.run or DEFAULT_RUN, make_detector(
        a.detector, a.min_face_size, a.sensitivity)), a)


def _training_commands(sub) -> None:

    p = sub.add_parser("dataset", help="what a dataset holds: format, classes, counts, problems")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("train", help="train a model; prints the run folder as the last line")
    add_train_args(p)
    p.add_argument("--run-dir", default=None, help="use this (new or queued) run folder")

    p = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    p.add_argument("run_dir")

    p = sub.add_parser("run", help="train a queued run folder as its run.json says (what the queue starts)")
    p.add_argument("run_dir")
    p.add_argument("--resume", action="store_true", help="continue from its last checkpoint")

    p = sub.add_parser("evaluate", help="re-evaluate a stored model, also on another dataset")
    p.add_argument("run_dir")
    p.add_argument("--data", default=None)
    p.add_argument("--split", default="test", help="train | val | test | all")
    p.add_argument("--tta", nargs="?", const="crops", default="off", choices=["off", "flip", "crops"],
                   help="test-time augmentation: flip (face + mirror) or crops (5 crops x flip; --tta alone)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--save", action="store_true", help="store the result in the run as evaluations/*.json")
    p.add_argument("--classes", default=None, help="score only these emotions (comma-separated names), e.g. to "
                                                    "compare models with different class sets on the same faces")
    p.add_argument("--engine", default="keras", choices=["keras", "litert"],
                   help="litert: score the run's model.tflite (what the app runs where the export is marked for it)")

    p = sub.add_parser("runs", help="list runs: yours and the committed reference collections (results/)")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
    p.add_argument("--all", action="store_true", help="every run one by one, not one row per group")
    p.add_argument("--json", action="store_true", help="your runs' records (the store's only), as JSON")


def _inference_commands(sub) -> None:
    p = sub.add_parser("predict", help="faces and emotions in images, or in every image of folders")
    p.add_argument("images", nargs="+", help="image files and/or folders (searched recursively)")
    _add_model_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", default=None, help="write one CSV row per face of every image to this file")
    p.add_argument("--no-detect", action="store_true", help="treat each image as one face crop")
    from fer_core.profile_commands import add_profile_option
    add_profile_option(p)

    p = sub.add_parser("video", help="faces and emotions through a video file: annotated copy and/or CSV")
    p.add_argument("input")
    _add_model_args(p)
    p.add_argument("--out", default=None, help="annotated video to write (.mp4 = H.264, .webm = VP8)")
    p.add_argument("--csv", default=None, help="one row per frame and face: time, face id, box, probabilities")
    p.add_argument("--every", type=int, default=1, help="analyse every N-th frame (the others keep its boxes)")
    add_profile_option(p)
    from fer_core.profile_commands import add_profile_commands
    add_profile_commands(sub)


def _report_commands(sub) -> None:
    p = sub.add_parser("results", help="the README's results tables (Markdown) from the committed records: the "
                                       "headline runs in the run store and the reference collections in results/")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
    p.add_argument("--results-dir", default=None, help="the reference collections (default: the repository's "
                                                       "results/)")
    p.add_argument("--collect", action="store_true",
                   help="first pack the run store's reference runs (k-fold groups, backbone comparisons, FER2013 "
                        "runs tried) into collections in the results folder: what the reference scripts end with")

    p = sub.add_parser("kfold", help="train all K folds of a subject-independent split and summarise")
    add_train_args(p)
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--members", type=int, default=1,
                   help="models per fold (seeds seed, seed+1000, ...), scored by their mean probabilities")
    p.add_argument("--input-sizes", type=_sizes, default=None, metavar="S1,S2,...",
                   help="a multi-scale ensemble: the models of each fold at each of these input sizes "
                        "(e.g. 40,48,56,64), scored by their mean probabilities; replaces --input-size")
    p.add_argument("--reuse", type=_bool, default=True, metavar="on|off",
                   help="reuse completed runs of the same config (an interrupted k-fold goes on where it stopped)")
    p.add_argument("--summary", default=None, help="where to write the summary json (default: runs dir)")

    p = sub.add_parser("calibrate", help="fit a run's logit adjustment and temperature on its validation part, so "
                                         "rare emotions get their due and the probabilities the app shows mean "
                                         "what they say")
    p.add_argument("run_dir")
    p.add_argument("--data", default=None, help="the run's dataset, where its recorded path is not reachable")
    p.add_argument("--logit-adjustment", default="auto", choices=["auto", "off"],
                   help="auto: weigh up the emotions training saw rarely by the tau chosen on validation; off: a "
                        "temperature only")

    p = sub.add_parser("export", help="export a run's model for fast inference")
    p.add_argument("run_dir")
    p.add_argument("--format", default="tflite", choices=["tflite"])
    p.add_argument("--quantize", default="none", choices=["none", "float16", "int8"])
    p.add_argument("--data", default=None, help="dataset for int8 calibration and the accuracy check")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_core", description="Facial emotion recognition studio")
    sub = parser.add_subparsers(dest="command", required=True)
    _training_commands(sub)
    _inference_commands(sub)
    _report_commands(sub)
    return parser


def main(argv=None) -> int:
    from fer_core.runs.quiet import quiet_startup
    quiet_startup()          # before any command imports TensorFlow
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line for the user; the details are in the run's train.log
        if os.environ.get("FER_DEBUG"):
            raise
        from fer_core.errors import UserError
        msg = str(e) if isinstance(e, (UserError, FileNotFoundError)) else f"{type(e).__name__}: {e}"
        print(f"error: {msg}", file=sys.stderr)
        return 2
    finally:
        if args.command in ("train", "resume", "run"):
            _start_next_queued()


def _start_next_queued() -> None:
    """A training launched by the queue hands on to the next queued run, whatever its own outcome."""
    from fer_core.runs.queue import start_next_queued
    try:
        for run_dir in start_next_queued():
            print(f"queue: started {run_dir}", file=sys.stderr)
    except Exception as e:   # the run itself is done and recorded; a queue hiccup must not change its exit
        print(f"queue: could not start the next queued run ({type(e).__name__}: {e}); opening the Train or "
              "Runs page starts it", file=sys.stderr)


# ---------------------------------------------------------------- commands
def cmd_dataset(a) -> int:
    from fer_core.data.datasets import load_dataset
    from fer_core.data.sharpness import GAP_WARNING
    ds = load_dataset(a.path)
    s = ds.summary()
    if a.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{s['path']}: {s['format']}, {s['num_samples']} images, {len(s['classes'])} classes")
    if s["has_subjects"]:
        print(f"subjects: {s['num_subjects']}")
    print("split totals: " + ", ".join(f"{k} {v}" for k, v in s["split_totals"].items()))
    for sp, counts in s["counts"].items():
        print(f"  {sp:5s} " + "  ".join(f"{c} {n}" for c, n in counts.items()))
    print("image sizes: " + ", ".join(f"{k} ({v})" for k, v in s["image_sizes"].items()))
    sharp = s["sharpness"]
    print("sharpness (mean pixel gradient): " + ", ".join(f"{k} {v:g}" for k, v in sharp.items()))
    if "train" in sharp and sharp["train"] > 0 and max(sharp.values()) / sharp["train"] >= GAP_WARNING:
        print("problem: the training faces are much smoother than the others (were they blurred or re-compressed?); "
              "a model trained on them fails on sharp faces. Use a copy with the original pixels.")
    for p in s["problems"]:
        print(f"problem: {p}")
    return 0


def cmd_train(a) -> int:
    from fer_core.data.datasets import detect_format
    cfg = config_from_args(a)
    detect_format(cfg.data)   # a wrong --data path: one clear line, before TensorFlow starts logging
    from fer_core.train.loop import train
    run_dir = train(cfg, run_dir=a.run_dir)
    from fer_core.runs.store import read_json
    status = (read_json(store.run_json_path(run_dir), {}) or {}).get("status")
    print(run_dir)
    return 0 if status == "completed" else 3


def cmd_resume(a) -> int:
    from fer_core.runs.store import RunStoreError, read_run
    run = read_run(a.run_dir)
    if run["status"] == "completed":   # said, with a failing exit code, rather than a silent success
        raise RunStoreError(f"{run['id']} already completed ({run['epochs_done']} epochs); there is nothing to "
                            "resume. To train longer, start a new run with --weights run:" + str(a.run_dir) + ".")
    return _train_from_folder(a.run_dir, resume=True)


def cmd_run(a) -> int:
    """What the queue starts: the run folder's own run.json says what to train; stderr is its train.log."""
    from fer_core.runs.quiet import filter_stderr
    filter_stderr()
    return _train_from_folder(a.run_dir, resume=a.resume)


def _train_from_folder(run_dir: str, resume: bool) -> int:
    from fer_core.runs.store import RunStoreError, read_json, run_json_path
    from fer_core.train.loop import train
    info = read_json(run_json_path(run_dir), None)
    if not info or "config" not in info:
        raise RunStoreError(f"{run_dir} has no readable run.json with a config; it cannot be "
                            f"{'resumed' if resume else 'trained'}")
    train(TrainConfig.from_dict(info["config"]), run_dir=run_dir, resume=resume)
    print(run_dir)
    status = (read_json(run_json_path(run_dir), {}) or {}).get("status")
    return 0 if status == "completed" else 3


def cmd_evaluate(a) -> int:
    from fer_core.report.evaluate import evaluate_run
    classes = [c.strip() for c in a.classes.split(",") if c.strip()] if a.classes else None
    result = evaluate_run(a.run_dir, data=a.data, split=a.split, tta=a.tta, save=a.save, classes=classes,
                          engine=a.engine)
    if a.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['run']} on {result['data']} [{result['split']}], {result['num_samples']} images"
          f"{'' if a.tta == 'off' else f' (TTA: {a.tta})'}")
    print(f"accuracy {result['accuracy']:.4f}  macro F1 {result['macro_f1']:.4f}  loss {result['loss']:.4f}  "
          f"{result['ms_per_image']:.3f} ms/image")
    for c, m in result["per_class"].items():
        print(f"  {c:10s} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} n={m['support']}")
    shown = result.get("as_shown")
    if shown:
        print(f"as the app answers (the run's calibration applied): accuracy {shown['accuracy']:.4f}  "
              f"macro F1 {shown['macro_f1']:.4f}")
    cal = result["calibration"]
    print(f"calibration ({cal['bins']} bins): ECE {cal['before']['ece']:.2%}"
          + (f", {cal['after']['ece']:.2%} with the run's calibration (T {cal['temperature']:.3f})" if cal["after"]
             else f" (no temperature fitted: python -m fer_core calibrate {result['run']})"))
    if result.get("classes_model_lacks"):
        print(f"classes the model lacks (not scored): {', '.join(result['classes_model_lacks'])} "
              f"({result['samples_skipped']} images)")
    return 0


def cmd_runs(a) -> int:
    """The Runs page's listing in text: the store's runs and the committed reference collections, each group
    (a k-fold's folds, a backbone comparison, a collection) as one row unless --all."""
    from fer_core.report import browse, compare
    from fer_core.runs.archive import beside
    from fer_core.runs.store import list_runs
    own = list_runs(a.runs_dir)
    if a.json:
        print(json.dumps([{k: v for k, v in r.items() if k not in ("info", "metrics")} for r in own], indent=2))
        return 0
    if not own:
        print(f"no runs of your own in {a.runs_dir} (train one: python -m fer_core train --help)")
    rows = compare.runs_table(beside(own))
    if not a.all:
        rows = browse.collapse_groups(rows)

    def pct(v):
        return f"{100 * v:.1f}%" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"

    print(f"{'run':56s} {'status':10s} {'backbone':14s} {'data':10s} {'val':>6s} {'test':>6s} {'F1':>6s}")
    for r in rows:
        print(f"{r['name'][:56]:56s} {str(r['status'])[:10]:10s} {str(r['backbone'] or '-')[:14]:14s} "
              f"{str(r['dataset'] or '-')[:10]:10s} {pct(r.get('best val accuracy')):>6s} "
              f"{pct(r.get('test accuracy')):>6s} {pct(r.get('macro F1')):>6s}")
    if not a.all and any(r.get("runs") for r in rows):
        print("(a row of N runs is a k-fold, a backbone comparison or a committed collection: --all lists each run)")
    return 0


def cmd_predict(a) -> int:
    from fer_core.data.images import ImageError, image_files_in, read_image_file
    rec = _recognizer(a)
    results = []
    for path in image_files_in(a.images):
        try:
            faces = rec.analyze(read_image_file(path), detect=not a.no_detect)
            results.append({"image": str(path), "faces": [f.to_dict() for f in faces], "error": None})
        except ImageError as e:
            results.append({"image": str(path), "faces": [], "error": str(e)})
    if a.csv:
        _write_predictions_csv(a.csv, results, rec.class_names)
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if r["error"]:
                print(f"{r['image']}: error: {r['error']}")
            elif not r["faces"]:
                print(f"{r['image']}: no face found (try --no-detect for a face crop)")
            for i, f in enumerate(r["faces"], 1):
                print(f"{r['image']}: face {i} at {tuple(f['box'])}: {f['emotion']} {f['confidence']:.0%}"
                      + (f" (profile: {f['profile']})" if f.get("profile") else ""))
        if a.csv:
            print(f"{sum(len(r['faces']) for r in results)} faces of {len(results)} images written to {a.csv}")
    return 0 if results and all(r["error"] is None for r in results) else 1


def _write_predictions_csv(path: str, results: list[dict], classes: list[str]) -> None:
    import csv
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "face", "x", "y", "width", "height", "emotion", "confidence", "error",
                    *[f"p_{c}" for c in classes]])
        for r in results:
            if r["error"] or not r["faces"]:
                w.writerow([r["image"], "", "", "", "", "", "", "", r["error"] or "no face found",
                            *[""] * len(classes)])
            for i, face in enumerate(r["faces"], 1):
                w.writerow([r["image"], i, *face["box"], face["emotion"], face["confidence"], "",
                            *[face["probabilities"].get(c, "") for c in classes]])


def cmd_video(a) -> int:
    from fer_core.serve.video_file import analyze_video, probe
    if not a.out and not a.csv:
        print("error: nothing to write: give --out annotated.mp4 and/or --csv per_frame.csv", file=sys.stderr)
        return 2
    info = probe(a.input)     # a bad file: one clear line before the model loads
    print(f"{a.input}: {info.width}x{info.height}, {info.fps:.1f} frames/s, {info.frames} frames "
          f"({info.seconds:.0f} s)", file=sys.stderr)
    summary = analyze_video(a.input, _recognizer(a), a.out, a.csv, a.every, stream=sys.stderr)
    for w in summary.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{summary.frames_read} frames read, {summary.frames_analysed} analysed, {summary.faces_seen} faces "
          f"followed, {summary.face_rows} CSV rows" + "".join(f"; wrote {p}" for p in (a.out, a.csv) if p))
    return 0


def cmd_calibrate(a) -> int:
    from fer_core.report.calibrate import calibrate_run
    r = calibrate_run(a.run_dir, data=a.data, adjust=a.logit_adjustment == "auto")
    b, f, adj = r["before"], r["after"], r["logit_adjustment"]
    for g in adj["grid"]:
        print(f"  logit adjustment tau {g['tau']:.2f}: validation accuracy {g['accuracy']:.4f}, "
              f"macro F1 {g['macro_f1']:.4f}")
    print(f"logit adjustment tau {adj['tau']:g} ({adj['rule']}); temperature {r['temperature']:.3f} fitted on "
          f"{r['fitted_on']['num_faces']} faces ({r['fitted_on']['which']} of {r['fitted_on']['data']})")
    print(f"validation NLL {b['nll']:.4f} -> {f['nll']:.4f}, ECE {b['ece']:.2%} -> {f['ece']:.2%} "
          f"({r['ece_bins']} bins); accuracy {b['accuracy']:.4f} -> {f['accuracy']:.4f}")
    print(r["path"])
    return 0


def cmd_results(a) -> int:
    from fer_core.report.results import collect, results_markdown
    from fer_core.runs.archive import results_dir as default_results_dir
    results_dir = a.results_dir or default_results_dir()
    if a.collect:
        for path in collect(a.runs_dir, results_dir):
            print(f"collected {path}", file=sys.stderr)
    print(results_markdown(a.runs_dir, results_dir))
    return 0


def cmd_kfold(a) -> int:
    from fer_core.train.kfold import run_kfold
    summary = run_kfold(config_from_args(a), a.folds, a.summary, members=a.members, input_sizes=a.input_sizes,
                        reuse=a.reuse)
    members = f" x {a.members} members" if a.members > 1 else ""
    if a.input_sizes and len(set(a.input_sizes)) > 1:
        members += f" at input sizes {', '.join(map(str, summary['input_sizes']))}"
    print(f"{summary['folds']} folds{members}: test accuracy mean {summary['mean_accuracy']:.4f} "
          f"± {summary['std_accuracy']:.4f}, macro F1 {summary['mean_macro_f1']:.4f}")
    print(summary["summary_path"])
    return 0


def cmd_export(a) -> int:
    from fer_core.serve.export import export_tflite
    result = export_tflite(a.run_dir, quantize=a.quantize, data=a.data)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_profile(a) -> int:
    from fer_core.profile_commands import cmd_profile
    return cmd_profile(a)


COMMANDS = {"dataset": cmd_dataset, "train": cmd_train, "resume": cmd_resume, "run": cmd_run, "video": cmd_video,
            "evaluate": cmd_evaluate, "runs": cmd_runs, "predict": cmd_predict, "kfold": cmd_kfold,
            "results": cmd_results, "export": cmd_export, "profile": _cmd_profile,
            "calibrate": cmd_calibrate}
