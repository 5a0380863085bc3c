"""Presets for the Train form: recipes a person understands, each with the time it took here and the accuracy it
reached, read from the committed records of the runs that used it (the run store's headline models and the
reference collections in results/; never typed in by hand).

Large datasets (FER2013, FER+) and small ones (CK+, a folder of a few hundred faces) get different recipes.
Every field of the form stays editable after a preset fills it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fer_core.config import TrainConfig
from fer_core.runs import archive, store
from fer_core.runs.defaults import FER2013_SCRATCH_RUN_ID, FERPLUS_RUN_ID
from fer_core.train import step_timing

LARGE = dict(backbone="fer_vgg", input_size=48, batch_size=64, optimizer="adam", learning_rate=1e-3,
             schedule="cosine", early_stopping=0, dropout=0.4, precision="auto", epochs=100)
SMALL = dict(backbone="fer_vgg", input_size=48, batch_size=32, schedule="cosine", early_stopping=0, epochs=40,
             precision="auto", keep="last", test_tta="flip")


# Where the committed runs the presets quote were trained (README, Results), for runs that predate run.json's
# own "precision" record: one core each of the development machine's CPU.
REFERENCE_DEVICE = "AMD EPYC Zen 5 (AVX512-BF16), one core"


@dataclass(frozen=True)
class Preset:
    name: str
    what: str
    options: dict
    reference: str          # a run id, "kfold:GROUP", or "minutes:RUN_ID:N" (that run's best validation by minute N)


PRESETS = {
    "large": [
        Preset("Quick look", "10 minutes of the full recipe's schedule", {**LARGE, "max_train_seconds": 600.0},
               f"minutes:{FER2013_SCRATCH_RUN_ID}:10"),
        Preset("Good", "30 minutes", {**LARGE, "max_train_seconds": 1800.0}, f"minutes:{FER2013_SCRATCH_RUN_ID}:30"),
        Preset("Best", "the committed FER2013 recipe from scratch, 85 minutes",
               {**LARGE, "max_train_seconds": 5100.0}, FER2013_SCRATCH_RUN_ID),
    ],
    "small": [
        Preset("Quick look", "from scratch, 40 epochs", {**SMALL, "weights": "none"}, "kfold:ck-scratch"),
        Preset("Best", "transfer from the committed FER+ model, 40 epochs",
               {**SMALL, "weights": f"run:runs/{FERPLUS_RUN_ID}", "freeze_base": False},
               "kfold:ck-transfer-ferplus"),
    ],
}


def kind_of(num_train_faces: int) -> str:
    return "large" if num_train_faces >= 10_000 else "small"


def _record(runs_dir: Path, run_id: str) -> dict | None:
    """A quoted run: from the run store (the headline models), else from the committed reference collections."""
    if store.run_json_path(runs_dir / run_id).is_file():
        return store.read_run(runs_dir / run_id)
    return next((r for r in archive.archived_runs() if r["id"] == run_id), None)


def _kfold_summary(runs_dir: Path, group: str) -> dict:
    own = store.read_json(runs_dir / f"kfold-{group}.json", None)
    return own or next((s for s in archive.kfold_summaries() if s.get("group") == group), {})


def _minutes_figure(run: dict | None, minutes: float) -> dict:
    """The best validation accuracy the run had reached after `minutes` of training (its own schedule was
    longer, so a run given only that budget, annealed to its end, does at least about as well)."""
    rows = store.run_history(run) if run else []
    spent, best = 0.0, None
    for r in rows:
        spent += r["seconds"] or 0.0
        if spent > minutes * 60:
            break
        best = max(best or 0.0, r["val_accuracy"] or 0.0)
    return {"minutes": minutes, "accuracy": best, "measure": "validation accuracy", "source": run and run["id"]}


def figures(preset: Preset, runs_dir) -> dict:
    """{"minutes", "accuracy", "measure", "source", "precision", "device"} from the committed records; accuracy
    None where not measured here; precision and device: what the quoted time was measured with, and on what."""
    runs_dir = Path(runs_dir)
    if preset.reference.startswith("minutes:"):
        _, run_id, minutes = preset.reference.split(":")
        run = _record(runs_dir, run_id)
        return {**_minutes_figure(run, float(minutes)), **measured_with(run)}
    if preset.reference.startswith("kfold:"):
        s = _kfold_summary(runs_dir, preset.reference[6:])
        folds = s.get("folds") or 1
        first = next((f.get("run") for f in s.get("per_fold") or [] if isinstance(f, dict) and f.get("run")), None)
        return {"minutes": (s.get("train_seconds_all_runs") or 0) / 60 / folds or None,
                "accuracy": s.get("mean_accuracy"), "measure": f"test accuracy, mean of {folds} folds",
                "source": preset.reference[6:],
                **measured_with(_record(runs_dir, Path(first).name) if first else None,
                                (s.get("config") or {}).get("precision"))}
    run = _record(runs_dir, preset.reference) or {}
    return {"minutes": (run.get("train_seconds") or 0) / 60 or None, "accuracy": run.get("test_accuracy"),
            "measure": "test accuracy", "source": preset.reference, **measured_with(run)}


def measured_with(run: dict | None, precision: str | None = None) -> dict:
    """The precision and device a run trained with: its own record where it has one (runs since `auto`), else
    its config's precision on the committed runs' machine."""
    info = (run or {}).get("info") or {}
    record = info.get("precision") if isinstance(info.get("precision"), dict) else {}
    precision = record.get("used") or (info.get("config") or {}).get("precision") or precision
    return {"precision": precision, "device": record.get("device") or REFERENCE_DEVICE}


def recipe_of(preset: Preset, used_here: str) -> step_timing.Recipe:
    o = {**TrainConfig().to_dict(), **preset.options}
    return step_timing.Recipe(o["backbone"], o["input_size"], o["batch_size"], used_here, o["image_size"],
                              o["optimizer"])


def start_timing(used_here: str) -> None:
    """Begin timing the small-dataset presets' steps in the background (they are the ones counted in epochs)."""
    for preset in PRESETS["small"]:
        step_timing.start_timing(recipe_of(preset, used_here))


def minutes_here(preset: Preset, num_train: int, used_here: str, wait: float = step_timing.CHILD_TIMEOUT
                 ) -> float | None:
    """For a recipe counted in epochs: the minutes it takes on this machine, from a few of its training steps
    timed here (start_timing) in the precision this machine uses; None where they are not timed (yet)."""
    o = {**TrainConfig().to_dict(), **preset.options}
    step = step_timing.seconds_per_step(recipe_of(preset, used_here), wait)
    return None if step is None else step_timing.estimated_seconds(o["epochs"], num_train, o["batch_size"], step) / 60


def timing_note(figure: dict, used_here: str, time_budget: bool, timed_here: bool = False) -> str:
    """What the quoted time was measured with, and what differs on this machine when its precision does."""
    measured = f"measured in {figure.get('precision') or 'an unrecorded precision'} on {figure['device']}"
    if timed_here:
        return (f"the time is for this machine: its training steps timed here in {used_here}; the accuracy was "
                f"{measured}")
    if not figure.get("precision") or figure["precision"] == used_here:
        return f"{measured}; trains in {used_here} on this machine too"
    if time_budget:
        return (f"{measured}; this machine trains in {used_here}, slower per epoch, so the same minutes get "
                "through fewer epochs and likely reach a lower accuracy")
    return f"{measured}; this machine trains in {used_here}, so expect it to take longer"
