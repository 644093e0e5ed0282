"""CVAT for video 1.1 export: ``NAME.cvat.xml``, to load the detections into a CVAT video task as tracks,
and ``NAME.cvat.zip`` with the same XML as ``annotations.xml``, the layout of CVAT's own "CVAT for video
1.1" export (without ``images/``), which its "Upload annotations" takes as it is.

Every detection of the record is kept (a record export, like csv). With tracking, each track id
becomes one CVAT track (its id is the record's track id, its label the track's most frequent class)
with a keyframe box on every frame it was seen. CVAT interpolates a track between its keyframes and
carries it on after the last one, so an ``outside`` box goes on the frame after each sighting that is
not followed by another (after a gap, and after the last). A box on no track (``track_id`` null, or a
record made without tracking) becomes a one-frame track of its own, numbered after the record's ids.
A record made with ``--classify`` gives every label a mutable text attribute ``classification``, set
on each box to the classifier's label for that frame ("sports car 0.72").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

from yolo_app.engine.record import Record
from yolo_app.engine.sinks import AtomicPath
from yolo_app.export.dataset import write_zip

Sighting = tuple[int, dict]  # (frame, detection)


def write_cvat(record: Record, target: Path, options: object = None) -> list[Path]:
    """Write ``target`` (``NAME.cvat.xml``) and ``NAME.cvat.zip`` beside it; returns both."""
    zipped = target.with_suffix(".zip")
    zipped.unlink(missing_ok=True)  # an old zip must not sit beside a new XML
    size = task_size(record)
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    classified = record.classified
    root.append(meta(record, size))
    for track_id, sightings in tracks(record):
        label = Counter(det["class_name"] for _, det in sightings).most_common(1)[0][0]
        track = ET.SubElement(root, "track", id=str(track_id), label=label, source="auto")
        seen = {frame for frame, _ in sightings}
        for frame, det in sightings:
            box = add_box(track, frame, det["xyxy"], outside=False)
            if classified:
                c = det.get("classification")
                text = f"{c['label']} {c['confidence']:.2f}" if c else ""
                ET.SubElement(box, "attribute", name="classification").text = text
            if frame + 1 not in seen and frame + 1 < size:  # stop CVAT carrying the box on
                add_box(track, frame + 1, det["xyxy"], outside=True)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    out = AtomicPath(target)
    tree.write(out.part, encoding="utf-8", xml_declaration=True)
    write_zip(zipped, {"annotations.xml": out.part})
    out.finish(True)
    return [target, zipped]


def task_size(record: Record) -> int:
    """Frames in the CVAT task: the whole source (a ``--max-frames`` record covers only its start)."""
    return max(record.header.get("frame_count") or 0, record.frames[-1]["frame"] + 1)


def tracks(record: Record) -> list[tuple[int, list[Sighting]]]:
    """(CVAT track id, sightings in frame order): the record's tracks, then one-frame tracks."""
    by_id: dict[int, list[Sighting]] = defaultdict(list)
    untracked: list[Sighting] = []
    for line in record.frames:
        for det in line["detections"]:
            track_id = det.get("track_id")
            (untracked if track_id is None else by_id[track_id]).append((line["frame"], det))
    first_free = max(by_id, default=0) + 1
    return sorted(by_id.items()) + [(first_free + i, [sighting]) for i, sighting in enumerate(untracked)]


def add_box(track: ET.Element, frame: int, xyxy: list[float], outside: bool) -> ET.Element:
    xtl, ytl, xbr, ybr = (f"{v:.2f}" for v in xyxy)
    return ET.SubElement(track, "box", frame=str(frame), keyframe="1", outside=str(int(outside)), occluded="0",
                  xtl=xtl, ytl=ytl, xbr=xbr, ybr=ybr, z_order="0")


def meta(record: Record, size: int) -> ET.Element:
    """``<meta><task>``: the task's size and mode, every model class as a label, the frame size."""
    first = record.frames[0]
    element = ET.Element("meta")
    task = ET.SubElement(element, "task")
    for tag, text in (("name", record.stem), ("size", size), ("mode", "interpolation"), ("overlap", 0),
                      ("bugtracker", ""), ("flipped", "False"), ("start_frame", 0), ("stop_frame", size - 1),
                      ("frame_filter", "")):
        ET.SubElement(task, tag).text = str(text)
    labels = ET.SubElement(task, "labels")
    for name in record.names.values():
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        attributes = ET.SubElement(label, "attributes")
        if record.classified:
            attribute = ET.SubElement(attributes, "attribute")
            for tag, text in (("name", "classification"), ("mutable", "True"), ("input_type", "text"),
                              ("default_value", ""), ("values", "")):
                ET.SubElement(attribute, tag).text = text
    original = ET.SubElement(task, "original_size")
    ET.SubElement(original, "width").text = str(record.header.get("width", first["width"]))
    ET.SubElement(original, "height").text = str(record.header.get("height", first["height"]))
    ET.SubElement(element, "dumped").text = datetime.now(timezone.utc).isoformat(sep=" ", timespec="seconds")
    return element
