"""Calibrate to me: profiles of one person's face that make the model read that person better."""

from fer_core.profiles.profile import (BLEND, TEMPERATURE, Profile, ProfileError, ProfileModelError,  # noqa: F401
                                       apply_profile, check_model, make_profile, model_fingerprint)
from fer_core.profiles.store import (DEFAULT_PROFILES_DIR, ProfileFileError, ProfileNotFound,  # noqa: F401
                                     ProfileStore)
