"""Keep TensorFlow's start-up chatter out of a run's train.log.

A queued training's stderr is its train.log (loading progress, warnings, a crash's last words all belong
there). TensorFlow's C++ start-up lines (CUDA probing on a machine without a GPU, oneDNN notices) are
written by absl before TF_CPP_MIN_LOG_LEVEL applies, so they cannot be switched off; this routes the
process's stderr through a filter that drops exactly those lines. It must run before TensorFlow loads.
"""

from __future__ import annotations

import atexit
import os
import re
import threading

NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+\.(cc|h):\d+\]"          # absl's C++ log line prefix
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    r"|.*(cuInit|CUDA error|cuda drivers|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS))")
_FILTERING = False
_STOP_FILTERING = None              # while filtering: gives fd 2 back and lets the filter write what it holds


def is_noise(line: str) -> bool:
    return bool(NOISE.match(line))


def quiet_startup() -> None:
    """The one place the CLI and the app quiet TensorFlow's start-up, before TensorFlow loads: its own log
    level for what it honours, and the filter for what absl prints before it reads that level. Under pytest
    the filter is left off (pytest captures fd 2 per test, and a pipe made in one test would outlive it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "PYTEST_CURRENT_TEST" not in os.environ:
        filter_stderr()


def filter_stderr() -> None:
    """From now on, this process's stderr (fd 2, C++ included) loses the noise lines and keeps the rest.
    Once per process: a second call would stack a second pipe for nothing."""
    global _FILTERING, _STOP_FILTERING
    if _FILTERING:
        return
    _FILTERING = True
    read_end, write_end = os.pipe()
    real = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as src:
            for line in src:
                if not is_noise(line.decode("utf-8", "replace")):
                    os.write(real, line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def flush_at_exit():   # runs after an uncaught exception's traceback is printed: keep its last words
        os.dup2(real, 2)   # closes the pipe's last write end, so the pump reaches its end
        thread.join(timeout=5)
    atexit.register(flush_at_exit)
    _STOP_FILTERING = flush_at_exit


def real_stderr_back() -> None:
    """Before exec: fd 2 becomes the real stderr again, as the filter's thread does not survive exec (the
    program that replaces this one would write into a pipe nobody reads)."""
    if _STOP_FILTERING is not None:
        _STOP_FILTERING()
