"""Speed benchmarks: `python -m bench.NAME [RUN_DIR] [--quick]`. See bench/README.md."""

from fer_core.runs.quiet import quiet_startup

quiet_startup()          # before a benchmark imports TensorFlow: its figures, not TensorFlow's start-up lines
