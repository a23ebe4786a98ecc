"""Entry point of the desktop app: ``facenet-photos-gui [--library PATH]`` or ``facenet-photos gui``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


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
