"""Does a Train preset take the time its caption says, on this machine? `python -m bench.preset_times`.

For each preset counted in epochs (the small-dataset ones; the large ones stop at their time budget), on CK+48
as the Train form would run it (split auto): the time the committed records quote (their machine and
precision), the time the form quotes here (a few training steps timed on this machine, in the precision `auto`
picks here), and the time the training then takes, start to finish, in a throw-away run store.

A CPU without bf16 instructions can be stood in for on one that has them: `ONEDNN_MAX_CPU_ISA=AVX2 python -m
bench.preset_times` keeps TensorFlow to AVX2 kernels, and `auto` then trains in float32 as it would there (the
core's clock and caches stay this machine's).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

from bench.common import CKPLUS, FER2013, REPO, need, parser, print_machine
from fer_core.config import TrainConfig
from fer_core.data.datasets import load_dataset
from fer_core.data.splits import training_faces
from fer_core.train import presets
from fer_core.train.precision import choose


def run_preset(preset, data: Path, store: Path) -> tuple[float, dict]:
    """Seconds from queueing to the end, and the run's record, of PRESET trained on DATA (in this process)."""
    from fer_core.runs import store as run_store
    from fer_core.train.loop import train
    cfg = TrainConfig(data=str(data), runs_dir=str(store), name=f"preset-{preset.name.lower().replace(' ', '-')}",
                      **preset.options)
    start = time.perf_counter()
    run_dir = train(cfg)
    return time.perf_counter() - start, run_store.read_run(run_dir)


def main(argv=None) -> None:
    p = parser(__doc__.split("\n")[0], run_dir=False)
    p.add_argument("--data", default=str(CKPLUS), help="a small dataset (default: CK+48)")
    p.add_argument("--large", action="store_true", help="also FER2013's Quick look (its 10-minute budget, "
                                                         "and the reading and scoring around it)")
    args = p.parse_args(argv)
    os.chdir(REPO)                                  # presets name the FER+ run as runs/...
    print_machine()
    data = need(Path(args.data))
    summary = load_dataset(str(data)).summary()
    num_train = training_faces(summary)
    print(f"dataset: {data} ({summary['num_samples']} faces, about {num_train} training under split auto); "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(not set)')}")
    print("| preset | precision here | records quote | the form quotes here | took here | here / form |")
    print("|---|---|---|---|---|---|")
    for preset in presets.PRESETS["small"][:1] if args.quick else presets.PRESETS["small"]:
        if args.quick:                              # a smoke test: the same comparison over two epochs
            preset = dataclasses.replace(preset, options={**preset.options, "epochs": 2})
        used = choose(preset.options.get("precision", "auto")).used
        presets.start_timing(used)                  # as the Train page does when it opens
        quoted = presets.figures(preset, REPO / "runs")
        form = presets.minutes_here(preset, num_train, used)
        with tempfile.TemporaryDirectory() as tmp:
            took, record = run_preset(preset, data, Path(tmp))
        if record.get("status") != "completed":
            print(f"| {preset.name} | {used} | - | - | failed: {record.get('error')} | - |")
            continue
        form_text = f"{form:.1f} min" if form else "could not time"
        ratio = f"{took / 60 / form:.2f}" if form else "-"
        quote = f"{quoted['minutes']:.1f} min" if quoted.get("minutes") else "not recorded"
        print(f"| {preset.name} | {used} | {quote} ({quoted['precision']}, {quoted['device']}) "
              f"| {form_text} | {took / 60:.1f} min | {ratio} |")
    if args.large:
        quick = presets.PRESETS["large"][0]
        with tempfile.TemporaryDirectory() as tmp:
            took, record = run_preset(quick, need(FER2013), Path(tmp))
        print(f"| {quick.name} (FER2013, {quick.what}) | {choose('auto').used} | "
              f"{quick.options['max_train_seconds'] / 60:.0f} min budget | "
              f"{quick.options['max_train_seconds'] / 60:.0f} min | {took / 60:.1f} min "
              f"({record.get('status')}) | {took / quick.options['max_train_seconds']:.2f} |")


if __name__ == "__main__":
    main()
