"""Home Assistant MQTT discovery: each camera a device, with entities on the topics the MQTT way out publishes.

The payloads follow Home Assistant's MQTT discovery schema (``<prefix>/<component>/<node>/<object>/config``,
retained; an empty retained payload removes the entity): per camera, a binary sensor per watched class
(occupancy, from ``TOPIC/CAMERA/LABEL``), a sensor per zone and class (``TOPIC/CAMERA/ZONE/LABEL``) and per
line direction (``TOPIC/CAMERA/LINE/in|out``), a camera on the snapshot topic, a switch for detection
(``detect/set`` and ``detect/state``), a button that takes a snapshot, and the camera's state; every entity is
available while ``TOPIC/available`` says ``online``. Pure functions: no client, no broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from yolo_app import __version__
from yolo_app.monitor.config import Camera
from yolo_app.monitor.service_config import Mqtt

DEFAULT_WATCHED = ("person",)  # a camera that names no classes gets entities for these


@dataclass(frozen=True)
class Topics:
    """Where the MQTT way out publishes and listens, under the config's ``topic_prefix``."""

    prefix: str

    @property
    def available(self) -> str:
        return f"{self.prefix}/available"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    def camera(self, camera: str, *levels: str) -> str:
        return "/".join((self.prefix, camera, *levels))


def watched(cam: Camera) -> tuple[str, ...]:
    """The classes a camera gets entities for: its own ``classes``, else DEFAULT_WATCHED."""
    return cam.classes or DEFAULT_WATCHED


def slug(text: str) -> str:
    """An id Home Assistant accepts in topics and entity ids: lower case, [a-z0-9_]."""
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "x"


def discovery_configs(settings: Mqtt, cam: Camera) -> dict[str, dict]:
    """Every discovery topic of ``cam`` -> its config payload."""
    topics = Topics(settings.topic_prefix)
    node = slug(settings.topic_prefix)
    device_id = f"{node}_{slug(cam.name)}"
    device = {"identifiers": [device_id], "name": cam.name, "manufacturer": "yolo_app", "model": "camera",
              "sw_version": __version__}
    configs: dict[str, dict] = {}

    def entity(component: str, key: str, name: str, **fields: object) -> None:
        unique = f"{device_id}_{slug(key)}"
        configs[f"{settings.discovery_prefix}/{component}/{node}/{unique}/config"] = {
            "name": name, "unique_id": unique, "device": device, "availability_topic": topics.available,
            "payload_available": "online", "payload_not_available": "offline", **fields}

    for label in watched(cam):
        entity("binary_sensor", f"{label}_occupancy", f"{label} occupancy", device_class="occupancy",
               state_topic=topics.camera(cam.name, label), value_template="{{ 'ON' if value | int > 0 else 'OFF' }}")
        entity("sensor", f"{label}_count", f"{label} count", state_topic=topics.camera(cam.name, label),
               state_class="measurement")
        if settings.snapshots:
            entity("camera", f"{label}_snapshot", f"{label} snapshot",
                   topic=topics.camera(cam.name, label, "snapshot"))
        for zone in cam.zones:
            entity("sensor", f"{zone.name}_{label}_count", f"{zone.name} {label} count",
                   state_topic=topics.camera(cam.name, zone.name, label), state_class="measurement")
    for line in cam.lines:
        for direction in ("in", "out"):
            entity("sensor", f"{line.name}_{direction}", f"{line.name} {direction}",
                   state_topic=topics.camera(cam.name, line.name, direction), state_class="total_increasing")
    if settings.snapshots:
        entity("camera", "snapshot", "snapshot", topic=topics.camera(cam.name, "snapshot"))
    entity("switch", "detect", "detect", command_topic=topics.camera(cam.name, "detect", "set"),
           state_topic=topics.camera(cam.name, "detect", "state"), payload_on="ON", payload_off="OFF",
           state_on="ON", state_off="OFF")
    entity("button", "take_snapshot", "take snapshot", command_topic=topics.camera(cam.name, "snapshot", "set"),
           payload_press="ON")
    entity("sensor", "status", "status", state_topic=topics.camera(cam.name, "status"), device_class="enum",
           options=["running", "reconnecting", "offline", "ended"])
    return configs
