"""yolo_app: real-time video object detection with Ultralytics YOLO, one engine and thin front ends."""

__version__ = "0.1.0"
