"""How long each page's script takes to run: `python -m bench.page_times [--repeats 15]`.

A Streamlit page reruns its whole script on every click, so the script's time is what a person waits for
before the page answers (the browser's drawing comes on top). Through Streamlit's AppTest, on the committed
run store (the two headline models and the reference collections): Home, Runs with the default model open
(its first tab, then each other tab), Compare (each tab), Train with its default dataset read, Analyze with the default
model loaded and no photo. The first run of each page pays for
imports and caches; the figure is the median of the reruns after it. The server compiles each page's script
once and keeps it; AppTest compiles it again on every run (as much as 50 ms for the Runs page), so the bench
gives its runs one shared script cache, as the server has.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.common import REPO, parser, print_machine

PAGES = ["streamlit_app.py", "pages/runs.py", "pages/compare.py", "pages/train.py", "pages/analyze.py"]
# the tabs whose sections run only when open: (their key, the first tab, the others)
TABS = {"pages/runs.py": ("run_tab", "Overview", ["Curves", "Confusion & per class", "Calibration",
                                                 "Misclassified", "Log", "Actions"]),
        "pages/compare.py": ("compare_tab", "Curves and per-class F1", ["Confusion matrices (test)",
                                                                       "K-fold cross-validation"])}


def share_script_cache() -> None:
    """Every AppTest run gets the same compiled scripts, as a server's sessions do (one ScriptCache)."""
    import threading

    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    shared, lock = {}, threading.Lock()

    def init(self):
        self._cache, self._lock = shared, lock
    ScriptCache.__init__ = init


def timed_reruns(at, repeats: int) -> float:
    """Median seconds of `repeats` reruns of the page AppTest `at` is on."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise SystemExit(f"error: the page raised: {at.exception}")
    return statistics.median(times)


def main(argv=None) -> None:
    from streamlit.testing.v1 import AppTest
    p = parser(__doc__.split("\n")[0], run_dir=False)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    print_machine()
    share_script_cache()
    at = AppTest.from_file(str(Path(REPO) / "streamlit_app.py"), default_timeout=600)
    at.run()
    home = timed_reruns(at, repeats)
    print(f"{'page':40s} {'ms per rerun':>12s} {'x Home':>7s}")
    print(f"{'Home':40s} {1000 * home:12.1f} {1.0:7.1f}")
    for page in PAGES[1:]:
        at.switch_page(page)
        at.run()
        t = timed_reruns(at, repeats)
        print(f"{page:40s} {1000 * t:12.1f} {t / home:7.1f}")
        key, first, others = TABS.get(page, (None, None, []))
        for tab in others:
            at.session_state[key] = tab
            at.run()
            t = timed_reruns(at, repeats)
            print(f"{'  ... tab ' + tab:40s} {1000 * t:12.1f} {t / home:7.1f}")
        if key:
            at.session_state[key] = first


if __name__ == "__main__":
    main()
