"""What Help ▸ About says: the app's version and the versions of what it runs on."""

from __future__ import annotations

from yolo_app import __version__


def about_text() -> str:
    """Rich text for QMessageBox.about."""
    import av
    import cv2
    import supervision
    import torch
    import ultralytics
    from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"<b>yolo_app {__version__}</b><br>Real-time object detection with Ultralytics YOLO.<br><br>"
            f"Ultralytics {ultralytics.__version__}<br>PyTorch {torch.__version__} (GPU: {gpu})<br>"
            f"supervision {supervision.__version__}<br>OpenCV {cv2.__version__}<br>PyAV {av.__version__}<br>"
            f"Qt {QT_VERSION_STR}, PyQt {PYQT_VERSION_STR}")
