"""Does alignment matter? `python -m bench.rotation [RUN_DIR] [--faces 1000] [--quick]`.

FER2013 PrivateTest faces (or CK+48 faces with --data ckplus) are put on a larger canvas and turned by
0, ±10, ±20, ±30 degrees. BlazeFace finds each face; the model then reads it twice, from the same framed
crop: as found (upright box), and aligned (turned back by its eye keypoints). Printed per angle: faces
found, and the accuracy of both readings on the faces found (scored by emotion name, on the classes the
model and the data share).
"""

from __future__ import annotations

import cv2
import numpy as np

from bench.common import CKPLUS, FER2013, check_run, need, parser, print_machine
from bench.faces_on_canvas import on_canvas, sample_files

ANGLES = (0, -10, 10, -20, 20, -30, 30)


def load_faces(data: str, n: int):
    """(faces, emotion names) of a sample of the test faces."""
    from fer_core.data.emotions import canonical
    if data == "ckplus":
        files = sorted(need(CKPLUS).glob("*/*.png"))
        files = [files[i] for i in np.random.default_rng(0).permutation(len(files))[:n]]
    else:
        files = sample_files(need(FER2013), "PrivateTest", n)
    return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files], [canonical(f.parent.name) for f in files]


def read_at_angle(rec, faces, labels, angle: float):
    """-> (found, correct as found, correct aligned) over the faces whose emotion the model knows."""
    from fer_core.data.emotions import canonical
    from fer_core.serve.recognizer import Face
    classes = [canonical(c) for c in rec.class_names]
    found = plain = aligned = 0
    for face, label in zip(faces, labels):
        if label not in classes:
            continue
        canvas = on_canvas(face, angle)
        hits = rec.find_faces(canvas)
        if not hits:
            continue
        found += 1
        f = max(hits, key=lambda h: h.box[2] * h.box[3])
        both = [Face(f.box, "", angle=0.0, framed=True), Face(f.box, "", angle=f.angle, framed=True)]
        probs = rec.classify(rec.model_inputs(canvas, both))
        plain += classes[int(probs[0].argmax())] == label
        aligned += classes[int(probs[1].argmax())] == label
    return found, plain, aligned


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--faces", type=int, default=1000)
    p.add_argument("--data", choices=["fer2013", "ckplus"], default="fer2013")
    a = p.parse_args(argv)
    run = check_run(a.run_dir)
    from fer_core.serve.detectors import make_detector
    from fer_core.serve.recognizer import EmotionRecognizer
    print_machine()
    rec = EmotionRecognizer.from_run(run, make_detector("blazeface"), prefer_tflite=False)
    faces, labels = load_faces(a.data, 100 if a.quick else a.faces)
    print(f"model: {run}; {len(faces)} {a.data} test faces on a canvas, BlazeFace")
    print("| turned by | faces found | accuracy as found | accuracy aligned |")
    print("|---|---|---|---|")
    for angle in ANGLES:
        found, plain, aligned = read_at_angle(rec, faces, labels, angle)
        n = max(found, 1)
        print(f"| {angle:+d}° | {found} | {100 * plain / n:.1f}% | {100 * aligned / n:.1f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
