"""Rebuild assets/demo.mp4, the built-in demo source, from the two photos Ultralytics ships.

A slow pan and zoom over zidane.jpg, then over bus.jpg: real people, a bus and ties for the detector,
no download needed. Run: .venv/bin/python assets/make_demo.py
"""

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from ultralytics.utils import ASSETS

WIDTH, HEIGHT, FPS, SECONDS_PER_PHOTO = 640, 360, 15, 4
OUT = Path(__file__).with_name("demo.mp4")


def pan(photo: np.ndarray, frames: int, zoom_from: float, zoom_to: float):
    """Crops of the output's aspect ratio sliding across the photo while zooming."""
    h, w = photo.shape[:2]
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = zoom_from + (zoom_to - zoom_from) * t
        crop_w = min(w, h * WIDTH / HEIGHT) / zoom
        crop_h = crop_w * HEIGHT / WIDTH
        x = (w - crop_w) * t
        y = (h - crop_h) * (0.5 + 0.4 * (t - 0.5))
        m = np.float32([[WIDTH / crop_w, 0, -x * WIDTH / crop_w], [0, HEIGHT / crop_h, -y * HEIGHT / crop_h]])
        yield cv2.warpAffine(photo, m, (WIDTH, HEIGHT), flags=cv2.INTER_AREA)


def main() -> None:
    frames = SECONDS_PER_PHOTO * FPS
    with av.open(str(OUT), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "26", "preset": "slow", "movflags": "+faststart"}
        n = 0
        for name, zoom in (("zidane.jpg", (1.0, 1.5)), ("bus.jpg", (1.0, 1.3))):
            for image in pan(cv2.imread(str(ASSETS / name)), frames, *zoom):
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts = n
                n += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    print(f"wrote {OUT} ({n} frames, {OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
