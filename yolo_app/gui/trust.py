"""Model files the user chose to load although they need full unpickling, for this session only.

A ``.pt`` checkpoint is a pickle. It loads without asking when it holds nothing but Ultralytics' own
checkpoint format; one that references other code is refused (``UntrustedWeights``) and the window asks
whether to load it anyway. A "Load anyway" covers that file as it is now (path, size and modification
time): a changed file asks again, and nothing is remembered after the window closes.
"""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtWidgets import QMessageBox, QWidget

TITLE = "Load this model file?"
LOAD_ANYWAY = "Load anyway"


class NeedsTrust(Exception):
    """A model load refused as untrusted: ``path`` is the resolved file, ``message`` the engine's line."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


class TrustedFiles:
    """The files this session may unpickle fully; ``everything``: all of them (``gui --trust-weights``)."""

    def __init__(self, everything: bool = False) -> None:
        self.everything = everything
        self._files: set[tuple[str, int, int]] = set()

    @staticmethod
    def _key(path: str | os.PathLike) -> tuple[str, int, int] | None:
        try:
            stat = Path(path).stat()
            return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns
        except OSError:
            return None

    def add(self, path: str | os.PathLike) -> None:
        key = self._key(path)
        if key is not None:
            self._files.add(key)

    def allows(self, path: str | os.PathLike) -> bool:
        return self.everything or self._key(path) in self._files


def ask_to_trust(parent: QWidget | None, path: Path) -> bool:
    """Ask whether to load ``path`` with full unpickling; True only for an explicit "Load anyway"."""
    box = QMessageBox(QMessageBox.Icon.Warning, TITLE,
                      f"{path.name} references code outside the Ultralytics checkpoint format.\n\n"
                      f"A model file is a pickle: loading it could run that code on this machine. "
                      f"Load it only if you trust where it came from.", parent=parent)
    box.setInformativeText(str(path))
    load = box.addButton(LOAD_ANYWAY, QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.exec()
    return box.clickedButton() is load
