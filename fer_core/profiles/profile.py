"""A profile: one person's faces per emotion in the model's embedding space, and the rule that uses it.

People show emotions in their own way; a general model reads a stranger at about half right. A few
shots of the user give a small head (or one prototype per emotion), and the answer becomes a blend of the
model's own probabilities and the head's. Before either sees a face, the person's own neutral face (the mean
of their neutral shots, else of all their shots) is taken off its embedding, so what is left is how far the
face has moved from that person's resting face rather than who the person is. A profile holds embeddings and
metadata only, never photos, and belongs to the model it was made with: another model's embedding space is a
different space, so using it there would give confident wrong answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_core.data.emotions import canonical
from fer_core.errors import UserError

# The rule's constants, chosen once by `python -m bench.calibration --choose` on development people (twface
# performers 01-10, both headline models, k = 1, 2, 3 shots per emotion of one elicitation type, scored on their
# photos of the other types): the grid point with the best mean accuracy. The trained head beat the prototypes
# there, so profiles carry one; so did taking the person's neutral face off the embeddings (embed.py says which
# embedding). The people the benchmark's table scores (twface 11-30, CK+) took no part in the choice. BLEND is the
# weight of the profile's answer, 1 - BLEND that of the base model.
METHOD = "logistic"         # "logistic": a small head trained on the shots; "prototypes": cosine to their means
BLEND = 0.6
HEAD_L2 = 0.01              # the trained head's weight decay
TEMPERATURE = 0.1           # the prototypes' cosine temperature (METHOD "prototypes"; best there at BLEND 0.6 too)
# A face crop this small (pixels, longest side) where the detector finds no face is taken as the face itself.
CROP_SIZED = 320


class ProfileError(UserError, ValueError):
    """A profile cannot be made or used as asked (bad shots, a name, another model)."""


class ProfileModelError(ProfileError):
    """The profile was made with another model: its prototypes live in another embedding space."""


NAME_CHARS = re.compile(r"^[\w][\w .\-]{0,59}$")


def check_name(name: str) -> str:
    """A name that is also a safe file name on every system, so a profile is one plain file."""
    name = (name or "").strip()
    if not NAME_CHARS.match(name) or name.endswith("."):
        raise ProfileError(f"'{name}' is not a usable profile name: use 1-60 letters, digits, spaces, '.', '-' "
                           "or '_', starting with a letter or digit")
    return name


@dataclass
class Profile:
    name: str
    model_run: str                          # the run id of the model it was made with
    model_fingerprint: str                  # sha256 (16 hex) of that model's model.keras
    class_names: list[str]
    prototypes: dict[str, np.ndarray]       # emotion -> unit vector; emotions without shots are absent
    shots: dict[str, int]                   # emotion -> number of shots it was made from
    blend: float = BLEND
    temperature: float = TEMPERATURE
    head: dict | None = None                # the trained head, where METHOD made one: {"weights", "bias", "classes"}
    centre: np.ndarray | None = None        # the person's neutral face (raw embedding), taken off every face
    created: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def summary(self) -> str:
        shots = ", ".join(f"{e} {n}" for e, n in self.shots.items() if n)
        return f"{self.name}: model {self.model_run}, made {self.created[:10]}, shots: {shots or 'none'}"


_FINGERPRINTS: dict[tuple, str] = {}


def model_fingerprint(run_dir) -> str:
    """A short hash of the run's model.keras: a retrained model in the same folder is another model."""
    path = Path(run_dir) / "model.keras"
    if not path.is_file():
        raise ProfileError(f"{run_dir} has no model.keras, so a profile cannot be tied to it; "
                           "use a completed run (python -m fer_core runs lists them)")
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _FINGERPRINTS[key]


def check_model(profile: Profile, run_dir) -> None:
    """Refuse a profile made with another model, saying which model it needs."""
    if run_dir is None:
        raise ProfileModelError(f"profile '{profile.name}' cannot be checked against a model without a run folder")
    if model_fingerprint(run_dir) != profile.model_fingerprint:
        raise ProfileModelError(
            f"profile '{profile.name}' was made with model '{profile.model_run}', not with the model in use "
            f"('{Path(run_dir).name}'); its prototypes mean nothing to this model. Switch to '{profile.model_run}', "
            f"or make the profile again with this model")


def class_for(emotion: str, class_names: list[str]) -> str:
    """The model's own class name for an emotion word (happiness -> happy where the model says happy)."""
    canon = {canonical(c): c for c in class_names}
    if canonical(emotion) not in canon:
        raise ProfileError(f"'{emotion}' is not one of this model's emotions ({', '.join(class_names)}); "
                           "name each shot folder or photo after one of them")
    return canon[canonical(emotion)]


def shot_input(recognizer, image: np.ndarray, label: str) -> np.ndarray:
    """The crop the model sees for one shot: the largest face, detected and aligned as the app does."""
    from fer_core.data.images import to_gray
    if image is None or image.ndim not in (2, 3) or min(image.shape[:2]) < 8:
        raise ProfileError(f"{label} is not an image")
    bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
    gray = to_gray(bgr)
    faces = recognizer.find_faces(bgr)
    if faces:
        return recognizer.model_inputs(gray, [max(faces, key=lambda f: f.box[2] * f.box[3])])[0]
    if max(gray.shape[:2]) <= CROP_SIZED:
        return recognizer.preprocess_faces([gray])[0]          # a face crop: the whole image is the face
    raise ProfileError(f"no face found in {label}; use a photo where the face is clear and frontal, "
                       "or a crop of the face")


def l2_normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-8)


def person_centre(embeddings: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """The person's resting face: the mean raw embedding of their neutral shots (and mirrors), else of all shots."""
    embeddings = np.asarray(embeddings, np.float32)
    return embeddings[neutral].mean(axis=0) if np.any(neutral) else embeddings.mean(axis=0)


def centred(embeddings: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """Unit vectors of the faces less the person's resting face: how the face moved, not whose it is."""
    return l2_normalise(np.asarray(embeddings, np.float32) - (0 if centre is None else centre))


def is_neutral(class_names) -> np.ndarray:
    return np.array([canonical(c) == "neutral" for c in class_names], bool)


def prototypes_from(embeddings: np.ndarray) -> np.ndarray:
    """Mean of the unit embeddings of the shots and their mirrors, as a unit vector."""
    return l2_normalise(l2_normalise(embeddings).mean(axis=0))


def make_profile(name: str, shots: dict[str, list[np.ndarray]], recognizer) -> Profile:
    """A profile from labelled shots of one person, in one batched model call (shots and their mirrors)."""
    name = check_name(name)
    classes = list(recognizer.class_names)
    inputs, owners = [], []
    for emotion, images in shots.items():
        cls = class_for(emotion, classes)
        for i, img in enumerate(images):
            inputs.append(shot_input(recognizer, img, f"{emotion} shot {i + 1}"))
            owners.append(cls)
    if not inputs:
        raise ProfileError("no shots given: a profile needs at least one photo of one emotion")
    x = np.stack(inputs)
    raw, _ = recognizer.embed(np.concatenate([x, x[:, :, ::-1, :]]))
    owners = np.array(owners * 2)
    centre = person_centre(raw, is_neutral(owners))
    emb = centred(raw, centre)
    protos = {c: prototypes_from(emb[owners == c]) for c in classes if (owners == c).any()}
    counts = {c: int((owners == c).sum() // 2) for c in classes}
    covered = [c for c in classes if c in protos]
    head = None
    if METHOD == "logistic" and len(covered) > 1:
        w, bias = fit_head(emb, np.array([covered.index(o) for o in owners]), len(covered), HEAD_L2)
        head = {"weights": w, "bias": bias, "classes": covered}
    return Profile(name=name, model_run=Path(recognizer.run_dir).name if recognizer.run_dir else "",
                   model_fingerprint=model_fingerprint(recognizer.run_dir), class_names=classes,
                   prototypes=protos, shots=counts, head=head, centre=centre)


HEAD_SCALE = 10.0       # unit embeddings times this, so plain gradient descent reaches confident answers quickly


def fit_head(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, l2: float,
             steps: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """A softmax regression on unit embeddings: few shots, so a few hundred numbers and full-batch descent."""
    x = HEAD_SCALE * l2_normalise(embeddings)
    y = np.eye(n_classes, dtype=np.float32)[labels]
    w = np.zeros((x.shape[1], n_classes), np.float32)
    b = np.zeros(n_classes, np.float32)
    for _ in range(steps):
        p = softmax(x @ w + b)
        g = (p - y) / len(x)
        w -= 0.5 * (x.T @ g + l2 * w)
        b -= 0.5 * g.sum(0)
    return w, b


def head_probs(weights: np.ndarray, bias: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    return softmax(HEAD_SCALE * l2_normalise(embeddings) @ weights + bias)


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def prototype_probs(prototypes: np.ndarray, embeddings: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(cosine(face, prototype) / temperature) over the prototypes given."""
    return softmax(l2_normalise(embeddings) @ l2_normalise(prototypes).T / temperature)


def blend_probs(base: np.ndarray, proto_p: np.ndarray, idx: list[int], blend: float) -> np.ndarray:
    """(1 - blend) * base + blend * the prototypes' answer, where emotions without shots keep the base answer.

    The prototypes share out only the probability the base model gave to the emotions they cover.
    """
    base = np.asarray(base, np.float32)
    q = base.copy()
    q[:, idx] = base[:, idx].sum(axis=1, keepdims=True) * proto_p
    return (1 - blend) * base + blend * q


def apply_profile(profile: Profile, embeddings: np.ndarray, base_probs: np.ndarray) -> np.ndarray:
    """Probabilities (N, classes) for faces of the profile's person, from their embeddings and the base answer:
    its trained head where it has one, else its prototypes."""
    classes = profile.class_names
    embeddings = centred(embeddings, profile.centre) if len(embeddings) else embeddings
    if profile.head and len(embeddings):
        idx = [classes.index(c) for c in profile.head["classes"]]
        q = head_probs(profile.head["weights"], profile.head["bias"], embeddings)
        return blend_probs(base_probs, q, idx, profile.blend)
    idx = [i for i, c in enumerate(classes) if c in profile.prototypes]
    if not idx or len(embeddings) == 0:
        return np.asarray(base_probs, np.float32)
    protos = np.stack([profile.prototypes[classes[i]] for i in idx])
    return blend_probs(base_probs, prototype_probs(protos, embeddings, profile.temperature), idx, profile.blend)
