"""`python -m fer_core COMMAND ...`: dataset, train, resume, evaluate, runs, predict, kfold, results, export.

Errors a user can fix print one line (`error: ...`) and exit non-zero; no tracebacks
unless FER_DEBUG=1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import DEFAULT_RUNS_DIR, TrainConfig


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
    d = TrainConfig()
    p.add_argument("--data", required=True, help="dataset: FER2013 csv, FER2013 folders, CK+48, or class folders")
    p.add_argument("--backbone", default=d.backbone)
    p.add_argument("--weights", default=d.weights, help="imagenet | none | PATH | run:RUN_DIR")
    p.add_argument("--split", default=d.split, help="official | subject-kfold:K:FOLD | random:FRACTION | auto")
    p.add_argument("--input-size", type=int, default=d.input_size, help="0 = the backbone's default")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=d.learning_rate)
    p.add_argument("--optimizer", default=d.optimizer, choices=["adam", "sgd"])
    p.add_argument("--schedule", default=d.schedule, choices=["plateau", "cosine", "constant"])
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--head-units", type=int, default=d.head_units)
    p.add_argument("--augment", type=_bool, default=d.augment, metavar="on|off")
    p.add_argument("--class-weights", type=_bool, default=d.class_weights, metavar="on|off")
    p.add_argument("--early-stopping", type=int, default=d.early_stopping, help="patience in epochs, 0 = off")
    p.add_argument("--freeze-base", type=_bool, default=d.freeze_base, metavar="on|off")
    p.add_argument("--feature-cache", type=_bool, default=d.feature_cache, metavar="on|off")
    p.add_argument("--fine-tune-layers", type=int, default=d.fine_tune_layers, help="top N base layers, -1 = all")
    p.add_argument("--fine-tune-epochs", type=int, default=d.fine_tune_epochs)
    p.add_argument("--fine-tune-lr", type=float, default=d.fine_tune_lr)
    p.add_argument("--label-mode", default=d.label_mode, choices=["majority", "probability"],
                   help="FER+ only: train on majority labels or on the annotators' vote distribution "
                        "(validation and test always use majority labels)")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--mixup", type=float, default=d.mixup, metavar="ALPHA",
                   help="blend pairs of training faces and their labels, weight ~ Beta(ALPHA, ALPHA); 0 = off")
    p.add_argument("--max-samples", type=int, default=d.max_samples, help="quick trials: cap the training part")
    p.add_argument("--eval-samples", type=int, default=d.eval_samples,
                   help="cap on validation and test faces: -1 = max-samples/4, 0 = all")
    p.add_argument("--strategy", default=d.strategy, choices=["none", "mirrored", "multiworker"])
    p.add_argument("--precision", default=d.precision, choices=["float32", "mixed_bfloat16"])
    p.add_argument("--match-sharpness", default=d.match_sharpness,
                   help="off | auto | SIGMA: blur faces at inference to the training faces' sharpness "
                        "(auto picks sigma on the validation part)")
    p.add_argument("--keep", default=d.keep, choices=["best", "last"],
                   help="model.keras = the best validation epoch, or the last one (small validation sets: "
                        "a schedule run to its end beats picking an epoch on a few dozen faces)")
    p.add_argument("--test-tta", default=d.test_tta, choices=["off", "flip", "crops"],
                   help="the final val/test figures average each face with its mirror (flip) or ten crops")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--max-train-seconds", type=float, default=d.max_train_seconds,
                   help="stop training after this many seconds (same budget for every backbone)")
    p.add_argument("--name", default="")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)


def config_from_args(a) -> TrainConfig:
    fields = TrainConfig().to_dict().keys()
    return TrainConfig(**{k: getattr(a, k) for k in fields if hasattr(a, k)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_core", description="Facial emotion recognition studio")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("dataset", help="what a dataset holds: format, classes, counts, problems")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("train", help="train a model; prints the run folder as the last line")
    add_train_args(p)
    p.add_argument("--run-dir", default=None, help="use this (new or queued) run folder")

    p = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    p.add_argument("run_dir")

    p = sub.add_parser("evaluate", help="re-evaluate a stored model, also on another dataset")
    p.add_argument("run_dir")
    p.add_argument("--data", default=None)
    p.add_argument("--split", default="test", help="train | val | test | all")
    p.add_argument("--tta", nargs="?", const="crops", default="off", choices=["off", "flip", "crops"],
                   help="test-time augmentation: flip (face + mirror) or crops (5 crops x flip; --tta alone)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--save", action="store_true", help="store the result in the run as evaluations/*.json")

    p = sub.add_parser("runs", help="list runs")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("predict", help="faces and emotions in images")
    p.add_argument("--run", required=True)
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-detect", action="store_true", help="treat each image as one face crop")

    p = sub.add_parser("results", help="the README's results tables (Markdown) from the run store")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)

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

    p = sub.add_parser("export", help="export a run's model for fast inference")
    p.add_argument("run_dir")
    p.add_argument("--format", default="tflite", choices=["tflite"])
    p.add_argument("--quantize", default="none", choices=["none", "float16", "int8"])
    p.add_argument("--data", default=None, help="dataset for int8 calibration and the accuracy check")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line for the user; the details are in the run's train.log
        if os.environ.get("FER_DEBUG"):
            raise
        from .errors import UserError
        msg = str(e) if isinstance(e, (UserError, FileNotFoundError)) else f"{type(e).__name__}: {e}"
        print(f"error: {msg}", file=sys.stderr)
        return 2
    finally:
        if args.command in ("train", "resume"):
            _start_next_queued()


def _start_next_queued() -> None:
    """A training launched by the queue hands on to the next queued run, whatever its own outcome."""
    from .jobs import start_next_queued
    try:
        for run_dir in start_next_queued():
            print(f"queue: started {run_dir}", file=sys.stderr)
    except Exception as e:   # the run itself is done and recorded; a queue hiccup must not change its exit
        print(f"queue: could not start the next queued run ({type(e).__name__}: {e}); opening the Train or "
              "Runs page starts it", file=sys.stderr)


# ---------------------------------------------------------------- commands
def cmd_dataset(a) -> int:
    from .datasets import load_dataset
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
    if "train" in sharp and sharp["train"] > 0 and max(sharp.values()) / sharp["train"] >= 1.5:
        print("problem: the training faces are much smoother than the others; a model trained on them fails on "
              "sharp faces unless you train with --match-sharpness auto")
    for p in s["problems"]:
        print(f"problem: {p}")
    return 0


def cmd_train(a) -> int:
    from .datasets import detect_format
    cfg = config_from_args(a)
    detect_format(cfg.data)   # a wrong --data path: one clear line, before TensorFlow starts logging
    from .training import train
    run_dir = train(cfg, run_dir=a.run_dir)
    from .runstore import read_json
    status = (read_json(Path(run_dir) / "run.json", {}) or {}).get("status")
    print(run_dir)
    return 0 if status == "completed" else 3


def cmd_resume(a) -> int:
    from .runstore import read_json
    from .training import train
    info = read_json(Path(a.run_dir) / "run.json", None)
    if not info or "config" not in info:
        from .runstore import RunStoreError
        raise RunStoreError(f"{a.run_dir} has no readable run.json; it cannot be resumed")
    run_dir = train(TrainConfig.from_dict(info["config"]), run_dir=a.run_dir, resume=True)
    print(run_dir)
    return 0


def cmd_evaluate(a) -> int:
    from .evaluate_run import evaluate_run
    result = evaluate_run(a.run_dir, data=a.data, split=a.split, tta=a.tta, save=a.save)
    if a.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['run']} on {result['data']} [{result['split']}], {result['num_samples']} images"
          f"{'' if a.tta == 'off' else f' (TTA: {a.tta})'}")
    print(f"accuracy {result['accuracy']:.4f}  macro F1 {result['macro_f1']:.4f}  loss {result['loss']:.4f}  "
          f"{result['ms_per_image']:.3f} ms/image")
    for c, m in result["per_class"].items():
        print(f"  {c:10s} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} n={m['support']}")
    if result.get("classes_model_lacks"):
        print(f"classes the model lacks (not scored): {', '.join(result['classes_model_lacks'])} "
              f"({result['samples_skipped']} images)")
    return 0


def cmd_runs(a) -> int:
    from .runstore import list_runs
    runs = list_runs(a.runs_dir)
    if a.json:
        print(json.dumps([{k: v for k, v in r.items() if k not in ("info", "metrics")} for r in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs in {a.runs_dir}")
        return 0
    print(f"{'run':48s} {'status':10s} {'backbone':14s} {'data':10s} {'val':>6s} {'test':>6s} {'F1':>6s}")
    for r in runs:
        f = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"
        print(f"{r['id'][:48]:48s} {r['status']:10s} {str(r['backbone'])[:14]:14s} {str(r['dataset'])[:10]:10s} "
              f"{f(r['best_val_accuracy']):>6s} {f(r['test_accuracy']):>6s} {f(r['macro_f1']):>6s}")
    return 0


def cmd_predict(a) -> int:
    from .images import ImageError, read_image_file
    from .inference import EmotionRecognizer
    rec = EmotionRecognizer.from_run(a.run)
    results = []
    for path in a.images:
        try:
            img = read_image_file(path)
            faces = rec.analyze(img, detect=not a.no_detect)
            results.append({"image": path, "faces": [f.to_dict() for f in faces], "error": None})
        except ImageError as e:
            results.append({"image": path, "faces": [], "error": str(e)})
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if r["error"]:
                print(f"{r['image']}: error: {r['error']}")
            elif not r["faces"]:
                print(f"{r['image']}: no face found (try --no-detect for a face crop)")
            for i, f in enumerate(r["faces"], 1):
                print(f"{r['image']}: face {i} at {tuple(f['box'])}: {f['emotion']} {f['confidence']:.0%}")
    return 0 if all(r["error"] is None for r in results) else 1


def cmd_results(a) -> int:
    from .results import results_markdown
    print(results_markdown(a.runs_dir))
    return 0


def cmd_kfold(a) -> int:
    from .kfold import run_kfold
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
    from .export import export_tflite
    result = export_tflite(a.run_dir, quantize=a.quantize, data=a.data)
    print(json.dumps(result, indent=2))
    return 0


COMMANDS = {"dataset": cmd_dataset, "train": cmd_train, "resume": cmd_resume, "evaluate": cmd_evaluate,
            "runs": cmd_runs, "predict": cmd_predict, "kfold": cmd_kfold, "results": cmd_results, "export": cmd_export}
