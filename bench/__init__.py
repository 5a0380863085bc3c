"""Speed benchmarks: `python -m bench.NAME [RUN_DIR] [--quick]`. See bench/README.md."""
