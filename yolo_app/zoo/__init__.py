"""The model zoo: the table of detectors and classifiers (``catalog``), the second-stage crop
classifier (``classifier``) and the training wrappers (``train``). Nothing here imports Qt."""
