"""The monitor's status snapshot as Prometheus metrics (``/metrics`` on the web page's server), written by
prometheus_client in the text format 0.0.4. The snapshot is read per scrape: a value missing or None is left
out rather than invented."""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
CAMERA_STATES = ("starting", "running", "reconnecting", "offline", "ended")

# Per camera: (metric, type, snapshot key, help).
CAMERA_METRICS = (
    ("yolo_app_camera_fps", "gauge", "fps", "Frames read per second."),
    ("yolo_app_camera_last_frame_age_seconds", "gauge", "last_frame_age_s", "Seconds since the last frame."),
    ("yolo_app_camera_events_today", "gauge", "events_today", "Events since midnight UTC."),
    ("yolo_app_camera_motion_skipped_ratio", "gauge", "motion_skipped_fraction",
     "Fraction of frames not sent to inference for lack of motion."),
    ("yolo_app_camera_reconnects_total", "counter", "reconnects", "Stream reconnections."),
    ("yolo_app_camera_dropped_frames_total", "counter", "dropped", "Frames dropped before inference."),
    ("yolo_app_camera_last_outage_seconds", "gauge", "last_outage_s", "How long the last outage lasted."),
)
WEBHOOK_METRICS = (
    ("yolo_app_webhooks_sent_total", "sent", "Webhook deliveries that succeeded."),
    ("yolo_app_webhooks_failed_total", "failed", "Webhook deliveries given up (15 minutes of failures)."),
    ("yolo_app_webhooks_retried_total", "retried", "Webhook attempts made after a failure."),
    ("yolo_app_webhooks_dropped_total", "dropped", "Webhook deliveries dropped (queue full or shutdown)."),
)
MQTT_METRICS = (
    ("yolo_app_mqtt_connected", "gauge", "connected", "1 while connected to the MQTT broker, else 0."),
    ("yolo_app_mqtt_published_total", "counter", "published", "Events the broker acknowledged."),
    ("yolo_app_mqtt_pending", "gauge", "pending", "Events recorded and not yet acknowledged by the broker."),
)


class SnapshotCollector:
    """A prometheus_client collector over one snapshot function."""

    def __init__(self, snapshot: Callable[[], dict]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        yield from _family("yolo_app_uptime_seconds", "gauge", "Seconds since the monitor started.",
                           [((), snap.get("uptime_s"))])
        yield from _family("yolo_app_events_total", "counter", "Events in the database.",
                           [((), snap.get("events_total"))])
        cameras = snap.get("cameras") or {}
        yield from _family("yolo_app_camera_up", "gauge", "1 while the camera delivers frames, else 0.",
                           [((name,), int(cam.get("state") == "running")) for name, cam in cameras.items()],
                           ("camera",))
        yield from _family("yolo_app_camera_state", "gauge", "1 for the camera's current state.",
                           [((name, state), int(cam.get("state") == state))
                            for name, cam in cameras.items() for state in CAMERA_STATES], ("camera", "state"))
        for metric, kind, key, help_text in CAMERA_METRICS:
            yield from _family(metric, kind, help_text, [((name,), cam.get(key)) for name, cam in cameras.items()],
                               ("camera",))
        webhooks = snap.get("webhooks") or {}
        for metric, key, help_text in WEBHOOK_METRICS:
            yield from _family(metric, "counter", help_text, [((), webhooks.get(key))])
        mqtt = snap.get("mqtt")
        if mqtt is not None:  # only where the config has an mqtt section
            for metric, kind, key, help_text in MQTT_METRICS:
                yield from _family(metric, kind, help_text, [((mqtt["broker"],), int(mqtt[key]))], ("broker",))


def _family(name: str, kind: str, help_text: str, samples: list[tuple[tuple[str, ...], object]],
            labels: tuple[str, ...] = ()) -> Iterator[Metric]:
    numbers = [(values, value) for values, value in samples if isinstance(value, (int, float))]  # bool too
    if not numbers:
        return
    family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, help_text, labels=labels)
    for values, value in numbers:
        family.add_metric(list(values), float(value))
    yield family


def render_metrics(snapshot: Callable[[], dict] | dict) -> str:
    """The snapshot (or a function returning it) in the text format; raises what the snapshot raises."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot if callable(snapshot) else lambda: snapshot))
    return generate_latest(registry).decode()
