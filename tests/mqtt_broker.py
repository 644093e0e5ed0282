"""A real MQTT broker for the tests: Debian's mosquitto on free loopback ports (a plain listener, and a TLS one
with certificates made by openssl for the occasion), optionally with a password file; and a subscriber that
keeps every message it receives. A missing mosquitto fails the tests naming the package."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import paho.mqtt.client as paho


def require_mosquitto() -> None:
    missing = [tool for tool in ("mosquitto", "mosquitto_passwd", "openssl") if shutil.which(tool) is None]
    assert not missing, (f"{', '.join(missing)} not installed: the MQTT tests need a real broker "
                         f"(sudo apt install mosquitto openssl; .ci/run installs them)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto on ``port`` (and, with ``tls``, a TLS listener on ``tls_port`` whose CA is ``ca``); with
    ``users`` ({name: password}) anonymous clients are refused. ``stop()`` and ``start()`` again keep the ports:
    a broker restarted without persistence, as a default install runs."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, tls: bool = False) -> None:
        require_mosquitto()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.ca = folder / "ca.pem" if tls else None
        # Started as root, mosquitto becomes the user 'mosquitto', who cannot read the test's folder: stay who we are.
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", f"log_dest file {folder / 'broker.log'}",
                 f"user {pwd.getpwuid(os.geteuid()).pw_name}"]
        if users:
            passwords = folder / "passwords"
            for i, (user, password) in enumerate(users.items()):
                subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwords), user, password],
                               check=True, capture_output=True)
            passwords.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines += ["allow_anonymous true"]
        if tls:
            self._make_certificates()
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {self.ca}",
                      f"certfile {folder / 'server.pem'}", f"keyfile {folder / 'server.key'}"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("per_listener_settings false\n" + "\n".join(lines) + "\n")
        self._proc: subprocess.Popen | None = None

    def _make_certificates(self) -> None:
        """A CA, and a certificate it signed for 127.0.0.1 (subjectAltName, as TLS clients check)."""
        f = self.folder

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=f)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=yolo_app test CA",
                "-keyout", "ca.key", "-out", "ca.pem")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
                "-out", "server.csr")
        (f / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days",
                "2", "-extfile", "san.ext", "-out", "server.pem")

    def start(self) -> None:
        self._proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self._proc.poll() is None, f"mosquitto ended: {self._proc.stderr.read().decode()[-500:]}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not listen within 20 s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() when it arrived


class Subscriber:
    """A client subscribed to ``topics`` that keeps every message, in the order they arrived."""

    def __init__(self, broker: Broker, *topics: str, user: str | None = None, password: str | None = None,
                 then: Callable[[Message], None] | None = None) -> None:
        self.messages: list[Message] = []
        self._then = then  # called with each message as it is kept (on the client's thread)
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{free_port()}")
        if user:
            self._client.username_pw_set(user, password)
        self._client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._keep
        self._client.connect("127.0.0.1", broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(20), "the test's subscriber could not subscribe"

    def _keep(self, _client, _userdata, message: paho.MQTTMessage) -> None:
        kept = Message(message.topic, bytes(message.payload), bool(message.retain), time.monotonic())
        with self._lock:
            self.messages.append(kept)
        if self._then is not None:
            self._then(kept)

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def texts(self, topic: str) -> list[str]:
        return [m.payload.decode() for m in self.on(topic)]

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
