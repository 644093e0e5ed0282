"""The PyQt6 desktop GUI: a thin front end over the engine. The only package that imports Qt."""

import os

import cv2

# opencv-python's loader points Qt at the plugins it bundles for its own windows; those do not match
# PyQt6's Qt and stop the window from starting. Undo that before any QApplication exists.
for _var in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
    if os.path.dirname(cv2.__file__) in os.environ.get(_var, ""):
        del os.environ[_var]
