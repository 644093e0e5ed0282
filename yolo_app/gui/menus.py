"""Where the main window's commands show: the order of the File, View and Help menus and of the toolbars.

The window owns the commands (text, shortcut, what they do); this module only lays them out, by key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMainWindow, QMenu, QToolBar, QWidget

Shortcut = str | QKeySequence.StandardKey | None
Command = tuple[str, str, Shortcut, Callable[[], object]]  # key, menu text, shortcut, slot

SEPARATOR = "-"
CAMERA, RECENT, MODELS = "camera", "recent", "models_bar"  # keys of submenus and toolbar widgets
FILE_MENU = ("open_file", "open_folder", "open_stream", CAMERA, "demo", RECENT, SEPARATOR,
             "annotate", "monitor", "models", SEPARATOR, "snapshot", "record", SEPARATOR, "quit")
VIEW_MENU = ("play", "step", "fullscreen", "grid")
HELP_MENU = ("about",)
# Two rows: the model pickers (model, device, backend, precision, compare) need a row of their own to stay
# visible in a window of ordinary width, instead of behind the toolbar's overflow arrow.
TOOLBARS = (("Source", ("open_file", CAMERA, "open_stream", "demo", SEPARATOR, "snapshot", "record")),
            ("Model", (MODELS,)))


def add_commands(window: QMainWindow, commands: Sequence[Command]) -> dict[str, QAction]:
    """One action per command, keyed. Each is added to the window itself, not only to a menu: its
    shortcut then works in full screen too, where the menu bar is hidden."""
    actions: dict[str, QAction] = {}
    for key, text, shortcut, slot in commands:
        action = QAction(text, window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        window.addAction(action)
        actions[key] = action
    return actions


def lay_out(window: QMainWindow, actions: Mapping[str, QAction], submenus: Mapping[str, QMenu],
            widgets: Mapping[str, QWidget]) -> None:
    """Fill the menu bar and add the toolbar: ``submenus`` go in menus, ``widgets`` in the toolbar."""
    for title, keys in (("&File", FILE_MENU), ("&View", VIEW_MENU), ("&Help", HELP_MENU)):
        menu = window.menuBar().addMenu(title)
        for key in keys:
            if key == SEPARATOR:
                menu.addSeparator()
            elif key in actions:
                menu.addAction(actions[key])
            else:
                menu.addMenu(submenus[key])
    for row, (name, keys) in enumerate(TOOLBARS):
        if row:
            window.addToolBarBreak()
        toolbar = QToolBar(name)
        toolbar.setMovable(False)
        window.addToolBar(toolbar)
        for key in keys:
            if key == SEPARATOR:
                toolbar.addSeparator()
            elif key in actions:
                toolbar.addAction(actions[key])
            else:
                toolbar.addWidget(widgets[key])
