"""fer_core: everything the emotion studio does, with no Streamlit in it.

Modules, one job each:
  config      hyper-parameters and their defaults (one place)
  images      decoding user images safely (size limits, EXIF, odd formats)
  datasets    FER2013 (csv or folders), CK+48 and any class-folder dataset
  splits      official / subject-kfold / random splits, reproducible from a seed
  backbones   the model registry (custom CNN, fer_vgg, ImageNet backbones)
  training    the one training loop, writing a run into the run store
  evaluation  metrics, confusion matrix, predictions
  runstore    the runs/ folder format: atomic files, listing, heartbeats
  faces       face detectors behind a small interface
  inference   EmotionRecognizer: detect + classify for the app, CLI and benches
"""

__version__ = "0.1.0"
