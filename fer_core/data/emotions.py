"""Emotion names: one canonical spelling, so datasets with different label words can be compared."""

# FER2013's label order (the Kaggle csv's integer labels 0..6).
FER2013_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

# Words used by common datasets, mapped onto one canonical name.
_ALIASES = {
    "anger": "angry", "angry": "angry", "mad": "angry",
    "contempt": "contempt",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "smile": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
}


def canonical(name: str) -> str:
    """The canonical emotion word for a label, or the label itself lower-cased if unknown."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


# One colour per emotion, the same everywhere: the boxes drawn on photos and videos (BGR, through
# color_bgr) and every chart of emotions (hex, through color_hex). Why: the timeline's colours used to be
# plotly's defaults, so "happy" was a different colour on each chart and on the boxes.
EMOTION_COLORS = {
    "angry": "#dc2828", "disgust": "#288c28", "fear": "#a03ca0", "happy": "#ffc800", "sad": "#2878c8",
    "surprise": "#00c8ff", "neutral": "#b4b4b4", "contempt": "#a05a5a",
}
OTHER_COLOR = "#00ff00"   # a class no table knows (a custom dataset's own labels)


def color_hex(name: str) -> str:
    """The emotion's colour as '#rrggbb' (any spelling: 'anger' and 'angry' share one)."""
    return EMOTION_COLORS.get(canonical(name), OTHER_COLOR)


def color_bgr(name: str) -> tuple[int, int, int]:
    """The same colour in OpenCV's (blue, green, red) order."""
    h = color_hex(name)
    return int(h[5:7], 16), int(h[3:5], 16), int(h[1:3], 16)


def color_map(names) -> dict[str, str]:
    """{label: '#rrggbb'} for plotly's color_discrete_map."""
    return {n: color_hex(n) for n in names}
