"""The monitor's MQTT way out: events, camera state, counts and pictures published to a broker (paho-mqtt),
commands taken from it, Home Assistant discovery; nothing lost while the broker is away.

One thread owns the client. It connects (again after a failure, with back-off, saying once in the log what
went wrong: a wrong host, port, password or certificate, a broker that refuses the client), runs the client's
network loop, and publishes:

- the event store's change log (monitor/events.py) from this way out's cursor, in order, QoS 1. The cursor
  moves only past changes the broker acknowledged and is kept in the database, so every event is published at
  least once, however long the broker was away and across restarts of the monitor (the first start with MQTT
  begins at the events written from then on);
- each camera's state whenever it changed, retained: status, detect state, objects per class in view, per
  zone and class, line counts, pictures;
- on every connect: ``online`` (the broker's last will says ``offline``), discovery configs (and an empty
  config for each entity of ours no camera has any more), all the state again (a broker restarted without
  persistence has lost its retained messages).

Commands (``CAMERA/detect/set`` ON|OFF, ``CAMERA/snapshot/set``) arrive on the same thread and go to the
camera. Nothing here runs on a camera's thread or makes one wait: the store only signals that a change was
logged, and a camera's state is read when it is published.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Mapping

import paho.mqtt.client as paho

from yolo_app.engine.worker import Worker
from yolo_app.errors import describe
from yolo_app.monitor.camera import CameraMonitor, CameraState
from yolo_app.monitor.service_config import Mqtt
from yolo_app.monitor.discovery import Topics, discovery_configs, slug, watched
from yolo_app.monitor.events import EventStore

log = logging.getLogger(__name__)

CURSOR = "mqtt"  # this way out's name in the store's cursors
IN_FLIGHT = 50  # events published and not yet acknowledged, at most
BACKOFF_S = (1.0, 30.0)  # between failed connects: first, longest
TICK_S = 0.1  # the network loop's wait: how soon a logged change or a command is seen
STATE_EVERY_S = 0.5
CONNECT_TIMEOUT_S = 5.0
CLOSE_S = 3.0  # a clean stop's time for the events still pending
STATUS_WORDS = {"starting": "reconnecting", "running": "running", "reconnecting": "reconnecting",
                "offline": "offline", "ended": "ended"}


@dataclass(frozen=True)
class MqttStats:
    connected: bool
    broker: str
    last_error: str | None
    published: int  # events the broker acknowledged since the start
    pending: int  # events logged and not yet acknowledged


class MqttOutlet(Worker):
    def __init__(self, settings: Mqtt, store: EventStore, cameras: Mapping[str, CameraMonitor]) -> None:
        super().__init__("mqtt")
        self.settings = settings
        self.store = store
        self.cameras = cameras
        self.topics = Topics(settings.topic_prefix)
        self.broker = f"{settings.host}:{settings.port}"
        if store.cursor(CURSOR) is None:  # new to this database: from the events written from now on
            store.set_cursor(CURSOR, store.last_change())
        self._cursor = store.cursor(CURSOR) or 0
        self._in_flight: list[tuple[int, paho.MQTTMessageInfo]] = []
        self._more = threading.Event()  # a change was logged (set by the store), or a full batch left more
        self._more.set()
        store.on_change(self._more.set)
        self._connected = False
        self._session = False  # a socket is open (CONNACK pending or received)
        self._why: str | None = None  # why this session ended, when the broker said (a refusal, a close)
        self._last_error: str | None = None
        self._told: str | None = None  # the error last logged: each is logged once
        self._published = 0
        self._sent: dict[str, bytes] = {}  # retained topic -> the payload published last (this connection)
        self._pictures: dict[tuple[str, str | None], int] = {}  # (camera, class) -> picture version published
        self._labels: dict[str, set[str]] = {name: set(watched(cam.cam)) for name, cam in cameras.items()}
        self._discovery = {topic: json.dumps(payload).encode() for cam in cameras.values()
                           for topic, payload in discovery_configs(settings, cam.cam).items()} \
            if settings.discovery else {}
        self._state_due = 0.0
        for camera in cameras.values():
            camera.class_snapshots = settings.snapshots
        self._client = self._make_client()

    def close(self, timeout: float = CLOSE_S + 2.0) -> bool:
        """Pending events, the last state and ``offline`` published, the connection closed cleanly: within
        ``timeout`` (True when the thread ended)."""
        self.stop()
        return self.join(timeout)

    def stats(self) -> MqttStats:
        return MqttStats(self._connected, self.broker, self._last_error, self._published,
                         max(0, self.store.last_change() - self._cursor))

    # the client's thread --------------------------------------------------------------------------------
    def _make_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=s.client_id, clean_session=True)
        client.connect_timeout = CONNECT_TIMEOUT_S
        if s.user is not None:
            client.username_pw_set(s.user, s.password)
        if s.tls is not None:
            client.tls_set(ca_certs=str(s.tls.ca) if s.tls.ca else None,
                           certfile=str(s.tls.cert) if s.tls.cert else None,
                           keyfile=str(s.tls.key) if s.tls.key else None)
        client.will_set(self.topics.available, "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def run(self) -> None:
        wait, next_try = BACKOFF_S[0], 0.0
        try:
            while not self.stopping:
                if not self._session:
                    if time.monotonic() < next_try:
                        self.stop_event.wait(min(TICK_S * 5, next_try - time.monotonic()))
                        continue
                    try:
                        self._client.connect(self.settings.host, self.settings.port, keepalive=30)
                        self._session, self._why = True, None
                    except (OSError, ValueError) as exc:
                        self._failed(_connect_error(exc, self.broker))
                        next_try, wait = time.monotonic() + wait, min(wait * 2, BACKOFF_S[1])
                        continue
                if self._client.loop(timeout=TICK_S) != paho.MQTT_ERR_SUCCESS:
                    self._end_session()
                    next_try, wait = time.monotonic() + wait, min(wait * 2, BACKOFF_S[1])
                    continue
                if self._connected:
                    wait = BACKOFF_S[0]
                    self._publish_changes()
                    if time.monotonic() >= self._state_due:
                        self._state_due = time.monotonic() + STATE_EVERY_S
                        self._publish_state()
        except Exception as exc:  # noqa: BLE001 - a bug here must not end the monitor; it is said once
            log.error("mqtt: stopped: %s", describe(exc))
        finally:
            self._close()

    def _close(self) -> None:
        """A clean end while connected: the events still pending and the cameras' last state (ended) go out,
        for a few seconds at most (what is left waits in the store), then ``offline``; a clean disconnect."""
        if self._connected:
            deadline = time.monotonic() + CLOSE_S
            self._publish_state()
            while (self._in_flight or self._cursor < self.store.last_change()) and time.monotonic() < deadline:
                self._more.set()
                self._publish_changes()
                if self._client.loop(timeout=TICK_S) != paho.MQTT_ERR_SUCCESS:
                    break
            info = self._client.publish(self.topics.available, "offline", qos=1, retain=True)
            while not info.is_published() and time.monotonic() < deadline + 1.0:
                if self._client.loop(timeout=TICK_S) != paho.MQTT_ERR_SUCCESS:
                    break
            self._client.disconnect()
            self._client.loop(timeout=TICK_S)
        self._connected = self._session = False

    def _end_session(self) -> None:
        """The connection is gone (or was refused): events not acknowledged go out again from the cursor."""
        self._connected = self._session = False
        self._in_flight.clear()
        self._failed(self._why or f"the connection to {self.broker} was lost")
        try:
            self._client.disconnect()
        except (OSError, ValueError):
            pass

    def _failed(self, why: str) -> None:
        self._last_error = why
        if why != self._told:
            self._told = why
            log.warning("mqtt: %s; trying again (events are kept and published once it connects)", why)

    # paho callbacks (on this thread, inside loop()) ---------------------------------------------------
    def _on_connect(self, client: paho.Client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            user = f", user {self.settings.user!r}" if self.settings.user else ""
            self._why = f"the broker at {self.broker} refused the connection ({reason}{user})"
            return
        if self._told is not None or self._last_error is None:
            log.warning("mqtt: connected to %s", self.broker)
        self._connected, self._told, self._last_error = True, None, None
        self._in_flight.clear()
        self._cursor = self.store.cursor(CURSOR) or self._cursor
        self._more.set()
        self._sent.clear()
        self._pictures.clear()
        self._state_due = 0.0
        client.publish(self.topics.available, "online", qos=1, retain=True)
        client.subscribe([(self.topics.camera("+", what, "set"), 1) for what in ("detect", "snapshot")])
        if self.settings.discovery:
            for topic, payload in self._discovery.items():
                client.publish(topic, payload, qos=1, retain=True)
            # Our own entities on the broker: any no camera has now is removed (a camera taken out of the config).
            client.subscribe(f"{self.settings.discovery_prefix}/+/{slug(self.settings.topic_prefix)}/+/config", 1)

    def _on_disconnect(self, _client, _userdata, _flags, reason, _properties) -> None:
        if self._connected and not self.stopping:
            self._why = f"the broker at {self.broker} closed the connection ({reason})"

    def _on_message(self, client: paho.Client, _userdata, message: paho.MQTTMessage) -> None:
        topic = message.topic
        if topic.startswith(f"{self.settings.discovery_prefix}/"):
            if message.payload and topic not in self._discovery:
                client.publish(topic, b"", qos=1, retain=True)
            return
        levels = topic[len(self.topics.prefix) + 1:].split("/")
        if len(levels) != 3 or levels[2] != "set" or levels[0] not in self.cameras:
            log.info("mqtt: ignored a command on %s", topic)
            return
        camera, what = self.cameras[levels[0]], levels[1]
        payload = message.payload.decode(errors="replace").strip().upper()
        if what == "detect" and payload in ("ON", "OFF"):
            camera.set_detecting(payload == "ON")
            log.warning("mqtt: camera %s: detection %s", levels[0], payload.lower())
            self._state_due = 0.0
        elif what == "snapshot":
            camera.take_picture()
        else:
            log.info("mqtt: ignored %r on %s", payload, topic)

    # what is published ----------------------------------------------------------------------------------
    def _publish_changes(self) -> None:
        """Move the cursor past what the broker acknowledged; publish the next changes, up to IN_FLIGHT."""
        done = 0
        while self._in_flight and self._in_flight[0][1].is_published():
            self._cursor = self._in_flight.pop(0)[0]
            done += 1
        if done:
            self.store.set_cursor(CURSOR, self._cursor)
            self._published += done
        room = IN_FLIGHT - len(self._in_flight)
        if room <= 0 or not self._more.is_set():
            return
        self._more.clear()
        after = self._in_flight[-1][0] if self._in_flight else self._cursor
        changes = self.store.changes_after(after, room)
        for change in changes:
            payload = json.dumps({"type": change.kind, "event": change.event.exported()})
            self._in_flight.append((change.seq, self._client.publish(self.topics.events, payload, qos=1)))
        if len(changes) == room:
            self._more.set()  # a full batch: there may be more

    def _publish_state(self) -> None:
        for name, camera in self.cameras.items():
            state = camera.state_now()
            self._retain(self.topics.camera(name, "status"), STATUS_WORDS.get(state.state, state.state))
            self._retain(self.topics.camera(name, "detect", "state"), "ON" if state.detecting else "OFF")
            self._counts(name, state)
            if self.settings.snapshots:
                for label, version in state.snapshots.items():
                    self._picture(name, camera, label, version)

    def _counts(self, name: str, state: CameraState) -> None:
        labels = self._labels[name]
        labels.update(state.in_view)  # a class once seen keeps its topic, which goes back to 0
        for counts in state.zones.values():
            labels.update(counts)
        for label in labels:
            self._retain(self.topics.camera(name, label), str(state.in_view.get(label, 0)))
            for zone, inside in state.zones.items():
                self._retain(self.topics.camera(name, zone, label), str(inside.get(label, 0)))
        for line, crossed in state.lines.items():
            for direction, count in crossed.items():
                self._retain(self.topics.camera(name, line, direction), str(count))

    def _picture(self, name: str, camera: CameraMonitor, label: str | None, version: int) -> None:
        if self._pictures.get((name, label)) == version:
            return
        picture = camera.picture(label)
        if picture is None:
            return
        topic = self.topics.camera(name, "snapshot") if label is None else self.topics.camera(name, label, "snapshot")
        self._client.publish(topic, picture[1], qos=1, retain=True)
        self._pictures[(name, label)] = picture[0]

    def _retain(self, topic: str, text: str) -> None:
        """Publish ``text`` on ``topic`` (retained) when it differs from what this connection published there."""
        payload = text.encode()
        if self._sent.get(topic) != payload:
            self._client.publish(topic, payload, qos=1, retain=True)
            self._sent[topic] = payload


def _connect_error(exc: BaseException, broker: str) -> str:
    """Why a connect failed, in words a user acts on."""
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing accepts connections at {broker} (connection refused: wrong port, or no broker running)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host {broker.rsplit(':', 1)[0]!r}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {broker} failed ({getattr(exc, 'verify_message', None) or exc.reason or exc})"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"no answer from {broker} within {CONNECT_TIMEOUT_S:.0f} s"
    return f"cannot connect to {broker} ({describe(exc)})"
