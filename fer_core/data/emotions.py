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
