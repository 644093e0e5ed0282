"""Read one export with Datumaro's own importer, as a user (or CVAT) would, and print what it found as JSON.

Runs under the tool venv's Python (``make tools``: Datumaro cannot live beside our OpenCV), never imports
yolo_app. ``python datumaro_read.py FORMAT PATH``: PATH is a folder, a file, or a zip, which is unpacked
first as CVAT's "Upload annotations" does before handing the folder to Datumaro. Prints one JSON object:
``detected`` (the formats Datumaro's detection names for the path), ``labels`` (label names in order) and
``items`` (id, subset, the ``frame`` attribute, whether the image file exists and its size, and the
boxes: label name, ``[x1, y1, x2, y2]`` and the annotation's attributes).
"""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from pathlib import Path

from datumaro.components.annotation import AnnotationType
from datumaro.components.dataset import Dataset
from datumaro.components.environment import Environment


def read(fmt: str, path: Path) -> dict:
    env = Environment()
    detected = env.detect_dataset(str(path))
    dataset = Dataset.import_from(str(path), fmt, env=env)
    names = [label.name for label in dataset.categories()[AnnotationType.label]]
    items = []
    for item in dataset:
        media = item.media
        image_path = Path(media.path) if media is not None and getattr(media, "path", None) else None
        boxes = [{"label": None if ann.label is None else names[ann.label],
                  "xyxy": [ann.x, ann.y, ann.x + ann.w, ann.y + ann.h],
                  "attributes": ann.attributes}
                 for ann in item.annotations if ann.type == AnnotationType.bbox]
        items.append({"id": item.id, "subset": item.subset, "frame": item.attributes.get("frame"),
                      "image_exists": bool(image_path and image_path.is_file()),
                      "size": list(media.size) if image_path and image_path.is_file() else None,
                      "other_annotations": sum(1 for ann in item.annotations if ann.type != AnnotationType.bbox),
                      "boxes": boxes})
    return {"detected": detected, "labels": names, "items": items}


def main(fmt: str, path: str) -> None:
    source = Path(path)
    with tempfile.TemporaryDirectory() as unpacked:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                archive.extractall(unpacked)
            source = Path(unpacked)
        print(json.dumps(read(fmt, source), default=str))


if __name__ == "__main__":
    main(*sys.argv[1:])
