"""Listing a large run store: `python -m bench.run_listing [--runs 1000] [--repeats 5] [--quick]`.

Makes a store of N run folders in a temporary folder (each a copy of a committed reference record: run.json,
metrics.json and history.csv, as a finished training leaves them, in k-fold groups of ten), then times what the
Runs page and the model pickers do on every rerun: list the store (first read, then again with nothing changed)
and build the Runs page's table (one row per run with its best and last validation accuracy, the groups folded).
Target: under 1 s for 1,000 runs, first read included.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import print_machine


def make_store(root: Path, n: int) -> None:
    """N run folders from the committed reference records, renamed, ten to a k-fold group."""
    from fer_core.runs import archive, store
    records = [r for doc in archive.read_collections(archive.RESULTS_DIR) for r in doc["runs"]]
    if not records:
        raise SystemExit("no reference collections in results/ to copy runs from")
    for i in range(n):
        r = records[i % len(records)]
        d = root / f"20260101-{i:06d}-bench-fold{i % 10}-{i:04x}"
        d.mkdir()
        info = {**r["run"], "name": d.name, "created": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
                "kfold": {"group": f"bench{i // 10}", "fold": i % 10, "folds": 10}}
        store.write_json_atomic(store.run_json_path(d), info)
        store.write_json_atomic(store.metrics_path(d), r["metrics"])
        store.write_history(d, r["history"])


def page_table(root: Path) -> int:
    """What the Runs page computes before drawing: the listing, the table's rows, the groups folded."""
    from fer_core.report import browse, compare
    from fer_core.runs import store
    rows = compare.runs_table(store.list_runs(root))
    return len(browse.collapse_groups(rows))


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5, help="timed reruns with nothing changed (the median is shown)")
    p.add_argument("--quick", action="store_true", help="50 runs, one rerun: that it works, not a figure")
    a = p.parse_args(argv)
    if a.quick:
        a.runs, a.repeats = 50, 1
    print_machine()
    from fer_core.runs import store
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_store(root, a.runs)
        first = timed(page_table, root)           # every run.json, metrics.json and history.csv read
        again = statistics.median(timed(store.list_runs, root) for _ in range(a.repeats))
        table = statistics.median(timed(page_table, root) for _ in range(a.repeats))
        rows = page_table(root)
    met = "met" if max(first, table) < 1 else "NOT met"
    print("\n".join([f"{a.runs} runs ({a.runs // 10} k-fold groups, folded into {rows} rows):",
                     f"  the Runs page's table, first time (every run's files read): {first:.3f} s",
                     f"  a rerun with nothing changed: listing {again:.3f} s, the whole table {table:.3f} s "
                     f"(medians of {a.repeats})", f"  target < 1 s: {met}"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
