"""How figures are written for people on the pages: durations in the units a person would say."""

from __future__ import annotations

import math


def duration(seconds) -> str:
    """'45 s', '2 min 30 s', '1 h 31 min': a training time in seconds alone ('5446 s') has to be worked out
    before it means anything. '' for no value."""
    if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return ""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, rest = divmod(s, 60)
        return f"{m} min {rest} s" if rest else f"{m} min"
    h, m = divmod(round(s / 60), 60)
    return f"{h} h {m} min" if m else f"{h} h"
