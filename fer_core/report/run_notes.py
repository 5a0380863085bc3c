"""What the pages say about how a run ended and about a model file it lacks: true for this run, in its state.

A run cancelled inside its first epoch has no checkpoint at all (checkpoints are written when an epoch
ends), and a run with no model.keras lacks it for a reason of its own (cancelled early, failed, still
running, or a reference run committed as a record without its model), which the page should name.
"""

from __future__ import annotations

from fer_core.runs import store


def cancelled_note(run: dict) -> str:
    """The line under a cancelled run's status."""
    done = run.get("epochs_done") or 0
    if not done:
        return ("stopped on request during epoch 1, before any epoch ended: no checkpoint or model was saved, "
                "so there is nothing to resume; launch it again to train it")
    best = (run.get("info") or {}).get("best_epoch")
    kept = f"the best model so far (epoch {best})" if run.get("has_model") and best else (
        "the best model so far" if run.get("has_model") else "no best model")
    resumable = bool(run.get("path")) and store.last_model_path(run["path"]).is_file()
    return (f"stopped on request after epoch {done}; {kept} is kept"
            + ("; Resume continues from its last checkpoint" if resumable else ""))


def missing_model_note(run: dict) -> str:
    """Why this run has no model.keras, for the Actions tab."""
    status, done = run.get("status"), run.get("epochs_done") or 0
    if status == "cancelled" and not done:
        return "No model file: this run was cancelled during its first epoch, before any model was saved."
    if status in ("failed", "damaged"):
        return f"No model file: the run {status} before saving one ({run.get('error') or 'no error recorded'})."
    if status in ("running", "queued"):
        return "No model file yet: the first one is saved when an epoch ends."
    if status == "cancelled":
        return "No model file: no epoch of this run improved on the validation part before it was cancelled."
    return ("No model file in this copy of the run: reference runs are committed as records without their "
            "model (scripts/reference_runs.sh trains them again).")
