"""``make bench-monitor``: starts N RTSP test cameras (GStreamer's RTSP server, H.264 at 5 fps from the
person video) and runs ``yolo_app.monitor.capacity`` on them; its last line is the JSON result."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtsp_camera import RtspCamera, rtsp_server_missing

from yolo_app.monitor import capacity

HERE = Path(__file__).resolve().parent
VIDEO = HERE.parent.parent / "shared" / "videos" / "one-by-one-person-detection.mp4"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=12, help="the most cameras tried (default: 12)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--video", type=Path, default=VIDEO if VIDEO.is_file() else HERE.parent / "assets" / "demo.mp4")
    args, rest = parser.parse_known_args()
    missing = rtsp_server_missing()
    if missing:
        print(f"bench-monitor: {missing}", file=sys.stderr)
        return 2
    cameras = [RtspCamera(args.video, size="768x432", fps=5, frames=150) for _ in range(args.cameras)]
    try:
        for camera in cameras:
            camera.start()
        return capacity.main([*(c.url() for c in cameras), "--seconds", str(args.seconds), "--warmup",
                              str(args.warmup), *rest])
    finally:
        for camera in cameras:
            camera.stop()


if __name__ == "__main__":
    sys.exit(main())
