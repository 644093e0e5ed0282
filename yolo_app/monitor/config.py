"""``monitor.yaml``: typed, validated settings. Every error names the file, the field and what is wrong,
in one line: ``monitor.yaml: cameras[0].zones[1].polygon: needs at least 3 [x, y] points``."""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from yolo_app.errors import UserError
from yolo_app.monitor.events import EVENT_TYPES
from yolo_app.monitor.filters import ObjectFilters, parse_filters
from yolo_app.monitor.service_config import Mqtt, Web, parse_mqtt, parse_web
from yolo_app.monitor.fields import Fields, class_names, flag, list_of, nonempty, number, one_of
from yolo_app.settings import (BACKENDS, DEFAULT_IMGSZ, DEFAULT_IOU, DEFAULT_WEIGHTS, IMGSZ_RULE, NMS_CHOICES,
                               PRECISIONS, RTSP_TRANSPORTS, ClassifySettings, DetectionOptions, ModelSettings,
                               StreamOptions, imgsz_fits)

MONITOR_CONF = 0.4  # above annotate's 0.25: an event wakes someone up, so a doubtful box should not make one

Point = tuple[float, float]


@dataclass(frozen=True)
class Motion:
    enabled: bool = False
    threshold: float = 0.01  # fraction of pixels changed
    cooldown_s: float = 2.0  # keep detecting this long after the last motion (slow walkers, stopping cars)


ANCHORS = ("bottom_center", "center", "top_left", "top_right", "bottom_left", "bottom_right")  # supervision's names


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[Point, ...]
    min_frames: int = 3  # frames inside before it counts (one-frame flickers are not visits)
    loiter_s: float | None = None  # a zone_loiter event once an object has been inside this long (once a visit)
    anchor: str = "bottom_center"  # the point of the box that must be inside: where a person stands, seen from the side


@dataclass(frozen=True)
class Line:
    name: str
    points: tuple[Point, Point]
    min_frames: int = 2  # frames on the new side before a crossing counts (a person on the line is not 10)
    anchor: str = "bottom_center"


@dataclass(frozen=True)
class Clip:
    pre: float = 5.0
    post: float = 5.0


@dataclass(frozen=True)
class Alert:
    on: str
    zone: str | None = None  # the zone or line the alert is about; None: any
    classes: tuple[str, ...] = ()  # empty: any class
    snapshot: bool = True
    clip: Clip | None = None
    webhook: str | None = None
    required_zones: tuple[str, ...] = ()  # the object must have entered one of these (empty: anywhere)

    def matches(self, event_type: str, zone: str | None, label: str | None,
                entered: frozenset[str] = frozenset()) -> bool:
        return (self.on == event_type and (self.zone is None or self.zone == zone)
                and (not self.classes or label in self.classes)
                and (not self.required_zones or bool(entered & set(self.required_zones))))


@dataclass(frozen=True)
class Camera:
    name: str
    source: str
    classes: tuple[str, ...] = ()  # empty: every class the model knows
    motion: Motion = Motion()
    zones: tuple[Zone, ...] = ()
    lines: tuple[Line, ...] = ()
    alerts: tuple[Alert, ...] = ()
    loop: bool = False  # a file source starts again at its end
    realtime: bool = True  # a file source plays at its own rate, as a camera would; false: every frame, fast
    offline_after: float = 5.0  # seconds without a frame before the camera is marked offline
    stream: StreamOptions = StreamOptions()  # rtsp_transport, open_timeout, read_timeout
    objects: ObjectFilters = ObjectFilters()  # size, shape and score filters, per class (monitor/filters.py)
    masks: tuple[tuple[Point, ...], ...] = ()  # detections whose bottom-centre is inside one are ignored
    stationary_after: float | None = 10.0  # seconds without moving before an object is stationary (None: never)
    track_memory: float = 2.0  # seconds an object out of sight keeps its id (the tracker's and the zones' memory)


@dataclass(frozen=True)
class Retention:
    days: float = 7.0
    max_gb: float = 20.0


@dataclass(frozen=True)
class MonitorConfig:
    path: Path
    cameras: tuple[Camera, ...]
    model: ModelSettings = ModelSettings()  # trust: the config's trust_weights
    detection: DetectionOptions = DetectionOptions(conf=MONITOR_CONF)  # each camera filters its own classes
    storage: Path = Path("monitor-data")
    retention: Retention = Retention()
    classify: ClassifySettings | None = None  # a second-stage classifier for what the detector finds
    inference: str = "shared"  # shared: the cameras' frames share network calls; per_camera: a detector each
    mqtt: Mqtt | None = None
    web: Web | None = None  # None: no web page (unless --web-port asks for one)
    raw: dict = field(default_factory=dict, compare=False, repr=False)  # as read, for saving edits back

    def camera(self, name: str) -> Camera:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)


def _points(count: int | None, minimum: int = 3) -> Callable[[Any], tuple[Point, ...]]:
    def check(value: Any) -> tuple[Point, ...]:
        what = f"exactly {count}" if count else f"at least {minimum}"
        if not isinstance(value, list) or (count and len(value) != count) or (not count and len(value) < minimum):
            raise ValueError(f"needs {what} [x, y] points in source-frame pixels")
        points = []
        for i, p in enumerate(value):
            if (not isinstance(p, list) or len(p) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
                raise ValueError(f"point {i} must be [x, y] with two numbers, not {p!r}")
            if p[0] < 0 or p[1] < 0:
                raise ValueError(f"point {i} {p} is outside the frame (negative)")
            points.append((float(p[0]), float(p[1])))
        if len(set(points)) < len(points) and not count:
            raise ValueError("has repeated points")
        if not count and _area(points) < 1.0:
            raise ValueError("has no area (its points lie on one line)")
        if count == 2 and points[0] == points[1]:
            raise ValueError("the two points are the same")
        return tuple(points)
    return check


def _area(points: list[Point]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))) / 2


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. In YAML 1.1 the alert key ``on:`` would read as True."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))

CAMERA_KEYS = ("name", "source", "classes", "motion", "zones", "lines", "alerts", "loop", "realtime", "offline_after",
               "rtsp_transport", "open_timeout", "read_timeout", "objects", "masks", "stationary_after", "track_memory")
TOP_KEYS = ("model", "conf", "iou", "imgsz", "device", "backend", "precision", "nms", "storage", "retention",
            "classify", "classify_classes", "trust_weights", "calibrate", "inference", "mqtt", "web", "cameras")
INFERENCE_MODES = ("shared", "per_camera")


def load_config(path: str | Path) -> MonitorConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"no such config file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    try:
        raw = yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise UserError(f"{path}: {where}not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    return parse_config(raw, path)


def parse_config(raw: Any, path: Path) -> MonitorConfig:
    top = Fields(str(path), "", raw if raw is not None else {}, TOP_KEYS, required=("cameras",))
    cameras_raw = top.data["cameras"]
    if not isinstance(cameras_raw, list) or not cameras_raw:
        top.fail("needs at least one camera (a list of {name, source})", at="cameras")
    cameras = tuple(_camera(top, i, c) for i, c in enumerate(cameras_raw))
    names = [c.name for c in cameras]
    for i, name in enumerate(names):
        if names.index(name) != i:
            top.fail(f"camera name '{name}' is used twice", at=f"cameras[{i}].name")
    retention = Retention()
    if top.data.get("retention") is not None:
        r = top.sub("retention", top.data["retention"], ("days", "max_gb"))
        retention = Retention(days=r.get("days", 7.0, number(0.01)), max_gb=r.get("max_gb", 20.0, number(0.001)))
    storage = Path(top.get("storage", "monitor-data", nonempty)).expanduser()
    if not storage.is_absolute():
        storage = path.resolve().parent / storage  # relative to the config file, not to wherever it runs
    model = ModelSettings(
        weights=top.get("model", DEFAULT_WEIGHTS, nonempty), device=top.get("device", "auto", nonempty),
        backend=top.get("backend", "auto", one_of(BACKENDS)),
        precision=top.get("precision", "auto", one_of(tuple(PRECISIONS))),
        trust=top.get("trust_weights", False, flag), calibration=_calibration(top, path),
        nms=top.get("nms", "auto", _nms))
    detection = DetectionOptions(
        conf=top.get("conf", MONITOR_CONF, number(0.0, 1.0)), iou=top.get("iou", DEFAULT_IOU, number(0.0, 1.0)),
        imgsz=top.get("imgsz", DEFAULT_IMGSZ, _imgsz))
    classify_spec = top.get("classify", None, nonempty)
    classify_classes = top.get("classify_classes", (), class_names)
    if classify_classes and not classify_spec:
        top.fail("needs classify (the classifier to run on these classes)", at="classify_classes")
    classify = ClassifySettings(classify_spec, classify_classes) if classify_spec else None
    return MonitorConfig(path=path, cameras=cameras, model=model, detection=detection, storage=storage,
                         retention=retention, classify=classify,
                         inference=top.get("inference", "shared", one_of(INFERENCE_MODES)),
                         mqtt=parse_mqtt(top, cameras) if top.data.get("mqtt") is not None else None,
                         web=parse_web(top) if top.data.get("web") is not None else None, raw=raw)


def _calibration(top: Any, config: Path) -> str | None:
    """int8's footage (a recording from these cameras, or a folder of their images): relative to the config."""
    given = top.get("calibrate", None, nonempty)
    if given is None:
        if top.data.get("precision") == "int8":
            top.fail("precision int8 is quantized on your own footage: add calibrate: VIDEO (a recording from "
                     "these cameras)", at="precision")
        return None
    where = Path(given).expanduser()
    return str(where if where.is_absolute() else config.resolve().parent / where)


def _nms(value: Any) -> str:
    """Ultralytics' own spelling: nms: false (the NMS-free head), true, or auto (YAML's booleans as written)."""
    text = {True: "true", False: "false"}.get(value, value) if isinstance(value, bool) else value
    if text not in NMS_CHOICES:
        raise ValueError(f"must be auto, true or false, not {value!r}")
    return text


def _imgsz(value: Any) -> int:
    size = number(32, 4096, integer=True)(value)
    if not imgsz_fits(size):
        raise ValueError(f"{IMGSZ_RULE}, not {value!r}")
    return size


def _camera(top: Fields, i: int, value: Any) -> Camera:
    cam = top.sub(f"cameras[{i}]", value, CAMERA_KEYS, required=("name", "source"))
    motion = Motion()
    if cam.data.get("motion") is not None:
        m = cam.sub("motion", cam.data["motion"], ("enabled", "threshold", "cooldown_s"))
        motion = Motion(enabled=m.get("enabled", True, flag), threshold=m.get("threshold", 0.01, number(0.0, 1.0)),
                        cooldown_s=m.get("cooldown_s", 2.0, number(0.0)))
    zones = tuple(_zone(cam, j, z) for j, z in enumerate(list_of(cam, "zones")))
    lines = tuple(_line(cam, j, ln) for j, ln in enumerate(list_of(cam, "lines")))
    geometry = [z.name for z in zones] + [ln.name for ln in lines]
    for name in geometry:
        if geometry.count(name) > 1:
            cam.fail(f"zone/line name '{name}' is used twice", at=f"{cam.where}.zones")
    alerts = tuple(_alert(cam, j, a, zones, lines) for j, a in enumerate(list_of(cam, "alerts")))
    offline_after = cam.get("offline_after", 5.0, number(0.5))
    # A stall (an open connection with no frame) must be noticed within offline_after: the read time-out
    # is at most half of it, as a camera's periodic RTCP reports can restart the wait once.
    stream = StreamOptions(
        transport=cam.get("rtsp_transport", "tcp", one_of(RTSP_TRANSPORTS)),
        open_timeout_s=cam.get("open_timeout", StreamOptions().open_timeout_s, number(0.5, 120.0)),
        read_timeout_s=cam.get("read_timeout", min(StreamOptions().read_timeout_s, offline_after / 2),
                               number(0.5, 120.0)))
    masks = tuple(_mask(cam, k, m) for k, m in enumerate(list_of(cam, "masks")))
    stationary = cam.data.get("stationary_after", 10.0)
    return Camera(
        name=cam.get("name", None, nonempty), source=str(cam.get("source", None, nonempty)),
        classes=cam.get("classes", (), class_names), motion=motion, zones=zones, lines=lines, alerts=alerts,
        loop=cam.get("loop", False, flag), realtime=cam.get("realtime", True, flag),
        offline_after=offline_after, stream=stream, objects=parse_filters(cam), masks=masks,
        stationary_after=None if stationary is False else cam.get("stationary_after", 10.0, number(0.5)),
        track_memory=cam.get("track_memory", 2.0, number(0.1, 600.0)))


def _mask(cam: Fields, k: int, value: Any) -> tuple[Point, ...]:
    try:
        return _points(None)(value)
    except ValueError as exc:
        cam.fail(str(exc), at=f"{cam.where}.masks[{k}]")


def _zone(cam: Fields, j: int, value: Any) -> Zone:
    z = cam.sub(f"zones[{j}]", value, ("name", "polygon", "min_frames", "loiter_s", "anchor"),
                required=("name", "polygon"))
    return Zone(z.get("name", None, nonempty), z.get("polygon", None, _points(None)),
                z.get("min_frames", 3, number(1, 10_000, integer=True)), z.get("loiter_s", None, number(0.1)),
                z.get("anchor", "bottom_center", one_of(ANCHORS)))


def _line(cam: Fields, j: int, value: Any) -> Line:
    ln = cam.sub(f"lines[{j}]", value, ("name", "points", "min_frames", "anchor"), required=("name", "points"))
    return Line(ln.get("name", None, nonempty), ln.get("points", None, _points(2)),
                ln.get("min_frames", 2, number(1, 10_000, integer=True)), ln.get("anchor", "bottom_center",
                                                                                 one_of(ANCHORS)))


def _alert(cam: Fields, j: int, value: Any, zones: tuple[Zone, ...], lines: tuple[Line, ...]) -> Alert:
    a = cam.sub(f"alerts[{j}]", value, ("on", "zone", "line", "classes", "snapshot", "clip", "webhook",
                                        "required_zones"), required=("on",))
    on = a.get("on", None, nonempty)
    if on not in EVENT_TYPES:
        a.fail(f"unknown event '{on}' (one of: {', '.join(EVENT_TYPES)})", at=f"{a.where}.on")
    target = a.get("zone", None, nonempty) or a.get("line", None, nonempty)
    known = [z.name for z in zones] if on.startswith("zone") else [ln.name for ln in lines]
    if target is not None and target not in known:
        a.fail(f"no {'zone' if on.startswith('zone') else 'line'} named '{target}' on this camera "
               f"(has: {', '.join(known) or 'none'})", at=f"{a.where}.{'zone' if 'zone' in a.data else 'line'}")
    clip = None
    if a.data.get("clip") not in (None, False):
        c = a.sub("clip", {} if a.data["clip"] is True else a.data["clip"], ("pre", "post"))
        clip = Clip(c.get("pre", 5.0, number(0.0, 60.0)), c.get("post", 5.0, number(0.0, 300.0)))
    webhook = a.get("webhook", None, nonempty)
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        a.fail(f"must be an http:// or https:// URL, not '{webhook}'", at=f"{a.where}.webhook")
    required = a.get("required_zones", (), class_names)
    for name in required:
        if name not in [z.name for z in zones]:
            a.fail(f"no zone named '{name}' on this camera (has: {', '.join(z.name for z in zones) or 'none'})",
                   at=f"{a.where}.required_zones")
    if on == "zone_loiter" and target is not None and next(z for z in zones if z.name == target).loiter_s is None:
        a.fail(f"zone '{target}' has no loiter_s (how long an object must stay for zone_loiter)",
               at=f"{a.where}.zone")
    return Alert(on=on, zone=target, classes=a.get("classes", (), class_names), snapshot=a.get("snapshot", True, flag),
                 clip=clip, webhook=webhook, required_zones=required)


def check_classes(config: MonitorConfig, names: dict[int, str]) -> None:
    """Class names in the config must exist in the model (a typo would silently match nothing)."""
    known = set(names.values())
    for i, cam in enumerate(config.cameras):
        classify_classes = config.classify.classes if config.classify else ()
        wanted = [("classes", c) for c in cam.classes] + [("classify_classes", c) for c in classify_classes]
        wanted += [(f"alerts[{j}].classes", c) for j, a in enumerate(cam.alerts) for c in a.classes]
        wanted += [("objects.filters", c) for c in cam.objects.classes]
        for where, name in wanted:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                field = where if where == "classify_classes" else f"cameras[{i}].{where}"
                raise UserError(f"{config.path}: {field}: unknown class '{name}' for model "
                                f"{config.model.weights}{hint}")


def save_geometry(config: MonitorConfig, camera: str, zones: list[Zone], lines: list[Line],
                  masks: list[tuple[Point, ...]] | None = None) -> MonitorConfig:
    """Write a camera's zones, lines (and masks, unless None) back into the config file (atomically, the old file
    kept as ``.bak``) and return the re-read config. Other keys keep their values; YAML comments are not kept."""
    raw = dict(config.raw)
    cams = [dict(c) for c in raw["cameras"]]
    index = next(i for i, c in enumerate(cams) if str(c.get("name")).strip() == camera)
    old_zones = {z.get("name"): z for z in cams[index].get("zones") or [] if isinstance(z, dict)}
    cams[index]["zones"] = [
        {**old_zones.get(z.name, {}), "name": z.name, "polygon": [[round(x), round(y)] for x, y in z.polygon],
         "min_frames": z.min_frames} for z in zones]
    old_lines = {ln.get("name"): ln for ln in cams[index].get("lines") or [] if isinstance(ln, dict)}
    cams[index]["lines"] = [{**old_lines.get(ln.name, {}), "name": ln.name,
                             "points": [[round(x), round(y)] for x, y in ln.points], "min_frames": ln.min_frames}
                            for ln in lines]
    if masks is not None:
        cams[index]["masks"] = [[[round(x), round(y)] for x, y in mask] for mask in masks]
    raw["cameras"] = cams
    parsed = parse_config(raw, config.path)  # refuse to write what would not load
    path = config.path
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f, sort_keys=False, default_flow_style=None)
    if path.exists():
        os.replace(path, path.with_name(path.name + ".bak"))
    os.replace(tmp, path)
    return parsed
