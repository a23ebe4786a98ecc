"""Entry point of the desktop app: ``facenet-photos-gui [--library PATH]`` or ``facenet-photos gui``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# Qt's X11 (xcb) platform plugin loads these at start-up; without one Qt aborts with "could not load the Qt
# platform plugin "xcb"", which does not say what to install. libxcb-cursor0 is the one missing on a stock
# Debian/Ubuntu desktop (Qt >= 6.5 needs it); the others come with nearly every X11 system.
XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb": "libxcb1", "xkbcommon-x11": "libxkbcommon-x11-0"}


def _find_library(name: str) -> str | None:
    import ctypes.util

    return ctypes.util.find_library(name)


def missing_display_libraries(env: Mapping[str, str] | None = None, platform: str | None = None,
                              find: Callable[[str], str | None] | None = None) -> list[str]:
    """Debian/Ubuntu package names of the X11 libraries Qt will need and cannot find (empty: all there, or
    Qt will not use X11: another platform plugin was chosen, a Wayland session, not Linux)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    find = find or _find_library
    if not platform.startswith("linux"):
        return []
    chosen = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip()
    if chosen and chosen != "xcb":
        return []
    if not chosen and env.get("WAYLAND_DISPLAY"):
        return []  # Qt picks its Wayland plugin
    return [pkg for lib, pkg in XCB_LIBRARIES.items() if not find(lib)]


def display_libraries_hint(packages: list[str]) -> str:
    return (
        "facenet-photos cannot open its window: Qt needs the X11 "
        f"librar{'y' if len(packages) == 1 else 'ies'} {', '.join(packages)}, which "
        f"{'is' if len(packages) == 1 else 'are'} not installed.\n"
        f"On Debian or Ubuntu install {'it' if len(packages) == 1 else 'them'} with:\n"
        f"    sudo apt install {' '.join(packages)}\n"
        "(the same applies when Qt says it \"could not load the Qt platform plugin xcb\")."
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="facenet-photos-gui",
                                 description="Find, group and name the faces in your photos.")
    ap.add_argument("--library", "-L", type=Path, default=None,
                    help="Library folder (default: the last one used, else your user data folder).")
    args, _qt_args = ap.parse_known_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the app; ``argv`` includes the program name (like ``sys.argv``). Returns the exit code."""
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    missing = missing_display_libraries()
    if missing:
        print(display_libraries_hint(missing), file=sys.stderr)
        return 4

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    from engine.errors import FacenetPhotosError, LibraryInUseError
    from engine.services.library import Library
    from engine.store.database import default_library_path

    from . import pyside_compat  # noqa: F401  (must run before any Qt call)
    from .main_window import MainWindow
    from .widgets import icon

    app = QApplication.instance() or QApplication(argv[:1])
    app.setApplicationName("facenet-photos")
    app.setOrganizationName("facenet-photos")
    app.setApplicationDisplayName("facenet-photos")
    app.setWindowIcon(icon("app"))
    # The app's own preferences (last library, window geometry); an ini file of your choice with this variable.
    ini = os.environ.get("FACENET_PHOTOS_GUI_SETTINGS")
    settings = QSettings(ini, QSettings.Format.IniFormat) if ini else QSettings()
    path = args.library or settings.value("library") or default_library_path()
    try:
        library = Library(Path(path))
    except LibraryInUseError as exc:
        QMessageBox.critical(None, "Library in use", f"{exc}\n\nClose the other facenet-photos window first.")
        return 3
    except FacenetPhotosError as exc:
        QMessageBox.critical(None, "Cannot open the library", str(exc))
        return 1
    settings.setValue("library", str(library.root))
    window = MainWindow(library, owns_library=True, settings=settings)
    window.show()
    rc = app.exec()
    if not window.is_closed:  # the event loop ended some other way: still shut down cleanly
        window._finish_close()
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
