"""Reading a YAML mapping field by field: unknown keys refused with the nearest known one, each value checked,
every problem one line naming the file and the field (monitor.yaml and its sections)."""

from __future__ import annotations

import difflib
from typing import Any, Callable

from yolo_app.errors import UserError


class Fields:
    """Reads one mapping, remembering where it is for messages and refusing unknown keys."""

    def __init__(self, file: str, where: str, value: Any, known: tuple[str, ...], required: tuple[str, ...] = ()):
        self.file, self.where = file, where
        if not isinstance(value, dict):
            self.fail(f"must be a mapping (key: value), not {kind_of(value)}")
        self.data = value
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
                self.fail(f"unknown key '{key}'{hint}", at=self._at(str(key)))
        for key in required:
            if key not in value:
                self.fail("missing (required)", at=self._at(key))

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, message: str, at: str | None = None) -> None:
        raise UserError(f"{self.file}: {at if at is not None else (self.where or 'top level')}: {message}")

    def get(self, key: str, default: Any, check: Callable[[Any], Any]) -> Any:
        if key not in self.data or self.data[key] is None and default is None:
            return default
        try:
            return check(self.data[key])
        except (TypeError, ValueError) as exc:
            self.fail(str(exc), at=self._at(key))

    def sub(self, key: str, value: Any, known: tuple[str, ...], required: tuple[str, ...] = ()) -> Fields:
        return Fields(self.file, self._at(key), value, known, required)


def kind_of(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "empty"}.get(
        type(value), type(value).__name__)


def number(low: float | None = None, high: float | None = None, integer: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise ValueError(f"must be {'a whole number' if integer else 'a number'}, not {kind_of(value)} {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bounds}, not {value}")
        return value
    return check


def nonempty(value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
        raise ValueError(f"must be non-empty text, not {kind_of(value)}")
    return str(value).strip()


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def class_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of class names, e.g. [person, car]")
    return tuple(nonempty(v) for v in value)


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value
    return check


def list_of(parent: Fields, key: str) -> list:
    value = parent.data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        parent.fail(f"must be a list, not {kind_of(value)}", at=f"{parent.where}.{key}")
    return value
