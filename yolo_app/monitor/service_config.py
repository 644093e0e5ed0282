"""The ``mqtt:`` and ``web:`` sections of ``monitor.yaml``: the monitor's services beside its cameras, typed and
validated with the same one-line errors as the rest of the config (monitor/config.py)."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_app.monitor.fields import Fields, flag, nonempty, number
from yolo_app.monitor.web.auth import PasswordHash

TOPIC_WORDS = ("detect", "snapshot", "status")  # TOPIC/CAMERA/<these>/...: a zone or line of that name would clash
MQTT_KEYS = ("host", "port", "user", "password_env", "tls", "topic_prefix", "client_id", "discovery",
             "discovery_prefix", "snapshots")
WEB_KEYS = ("port", "bind", "password_env", "tls", "live_fps")


@dataclass(frozen=True)
class MqttTls:
    """TLS to the broker: the CA that signed its certificate (None: the system's), and a client certificate."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class Mqtt:
    """The MQTT way out (monitor/mqtt.py): where the broker is and what to publish."""

    host: str
    port: int = 1883
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # from the environment; never written or shown
    tls: MqttTls | None = None
    topic_prefix: str = "yolo_app"
    client_id: str = "yolo_app"
    discovery: bool = True  # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"
    snapshots: bool = True  # retained JPEGs per camera and class


@dataclass(frozen=True)
class WebTls:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Web:
    """The monitor's web page (monitor/web): where it listens, its password (kept only as a hash) and TLS."""

    port: int = 5000
    bind: str = "127.0.0.1"
    password: PasswordHash | None = field(default=None, repr=False)
    tls: WebTls | None = None
    live_fps: float = 4.0  # each camera's live picture is drawn at most this often, however many pages watch it

    @property
    def local_only(self) -> bool:
        return is_loopback(self.bind)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_web(top: Fields) -> Web:
    """The web section. Bound anywhere but the loopback it needs a password: the page shows the cameras live."""
    config = Path(top.file)
    w = top.sub("web", top.data["web"], WEB_KEYS)
    bind = w.get("bind", "127.0.0.1", nonempty)
    tls = None
    if w.data.get("tls") is not None:
        t = w.sub("tls", w.data["tls"], ("cert", "key"), required=("cert", "key"))
        tls = WebTls(*(_existing_file(t, key, config) for key in ("cert", "key")))
    password = None
    variable = w.get("password_env", None, nonempty)
    if variable is not None:
        secret = os.environ.get(variable)
        if not secret:
            w.fail(f"the environment variable {variable} is not set (or empty)", at="web.password_env")
        password = PasswordHash.of(secret)
    if password is None and not is_loopback(bind):
        w.fail(f"{bind} lets other machines in: set web.password_env (the environment variable holding the "
               f"page's password), or bind 127.0.0.1", at="web.bind")
    return Web(port=w.get("port", 5000, number(0, 65535, True)), bind=bind, password=password, tls=tls,
               live_fps=w.get("live_fps", 4.0, number(0.2, 30.0)))


def parse_mqtt(top: Fields, cameras: tuple) -> Mqtt:
    """The mqtt section: the password from the environment variable it names, TLS files relative to the config;
    camera, zone and line names that can be topic levels (TOPIC/CAMERA/ZONE/LABEL) beside ours."""
    config = Path(top.file)
    m = top.sub("mqtt", top.data["mqtt"], MQTT_KEYS, required=("host",))
    for i, cam in enumerate(cameras):
        named = [(f"cameras[{i}].name", cam.name, ("available", "events"))]
        named += [(f"cameras[{i}].zones[{j}].name", z.name, TOPIC_WORDS) for j, z in enumerate(cam.zones)]
        named += [(f"cameras[{i}].lines[{j}].name", ln.name, TOPIC_WORDS) for j, ln in enumerate(cam.lines)]
        for where, name, taken in named:
            if any(c in name for c in "/+#") or name in taken:
                top.fail(f"{name!r} cannot be an MQTT topic level (no / + #, and not {', '.join(taken)})", at=where)
    tls = None
    given = m.data.get("tls")
    if given is True:
        tls = MqttTls()
    elif given not in (None, False):
        t = m.sub("tls", given, ("ca", "cert", "key"))
        files = {key: _existing_file(t, key, config) for key in ("ca", "cert", "key")}
        if (files["cert"] is None) != (files["key"] is None):
            t.fail("cert and key go together (the client's certificate and its private key)")
        tls = MqttTls(**files)
    user = m.get("user", None, nonempty)
    password = None
    variable = m.get("password_env", None, nonempty)
    if variable is not None:
        if user is None:
            m.fail("needs mqtt.user (a password goes with a user name)", at="mqtt.password_env")
        password = os.environ.get(variable)
        if password is None:
            m.fail(f"the environment variable {variable} is not set", at="mqtt.password_env")
    return Mqtt(host=m.get("host", None, nonempty), port=m.get("port", 8883 if tls else 1883, number(1, 65535, True)),
                user=user, password=password, tls=tls, topic_prefix=m.get("topic_prefix", "yolo_app", _topic),
                client_id=m.get("client_id", f"yolo_app-{socket.gethostname()}", nonempty),
                discovery=m.get("discovery", True, flag),
                discovery_prefix=m.get("discovery_prefix", "homeassistant", _topic),
                snapshots=m.get("snapshots", True, flag))


def _existing_file(fields: Fields, key: str, config: Path) -> Path | None:
    given = fields.get(key, None, nonempty)
    if given is None:
        return None
    path = Path(given).expanduser()
    path = path if path.is_absolute() else config.resolve().parent / path
    if not path.is_file():
        fields.fail(f"no such file: {path}", at=f"{fields.where}.{key}")
    return path


def _topic(value: Any) -> str:
    """A topic prefix: levels of text, no wildcards."""
    text = nonempty(value)
    if "+" in text or "#" in text or any(level == "" for level in text.split("/")):
        raise ValueError(f"must be topic levels like yolo_app or home/cameras, without + or # or empty levels, not "
                         f"{text!r}")
    return text
