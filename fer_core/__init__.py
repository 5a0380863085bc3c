"""fer_core: everything the emotion studio does, with no Streamlit in it.

Subpackages, one job each (the README's "Code map" says the same):
  data/     reading datasets (FER2013, FER+, CK+, class folders), splits, emotion names
  model/    the backbone registry, custom layers, saving and loading, fast predict functions
  train/    the training recipe, its callbacks and schedule, presets, k-fold
  runs/     the run store (every run file and its path), the training queue, the default model's name
  serve/    face detection and alignment, the recognizer, drawing, webcam and video pipelines, Grad-CAM, export
  report/   metrics, re-evaluation, the Runs/Compare tables, the README's results
  config.py (every training option, declared once), cli.py (`python -m fer_core`), errors.py
"""

__version__ = "0.2.0"
