"""Webcam monitoring: zones and lines, events with evidence, alerts, reconnect, retention, status."""
