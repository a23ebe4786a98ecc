"""What every command shares: the typer app, the consoles, opening the library, plain-words errors."""

from __future__ import annotations

import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from engine.errors import FacenetPhotosError, LibraryInUseError

cli = typer.Typer(
    name="facenet-photos",
    help="Find every face in your photos, group them into people, name and correct them - offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_cli = typer.Typer(help="Evaluate the pipeline on public benchmarks.", no_args_is_help=True)
cli.add_typer(eval_cli, name="eval")

out = Console()
err = Console(stderr=True)


class State:
    library: Path | None = None


state = State()


@cli.callback()
def _main(
    library: Annotated[
        Path | None,
        typer.Option(
            "--library", "-L", help="Library folder (default: your user data folder).", envvar="FACENET_PHOTOS_LIBRARY"
        ),
    ] = None,
) -> None:
    state.library = library


def open_library(create: bool = True, read_only: bool = False):
    """The library; ``read_only`` for commands that only look, so they run beside the open app (SQLite
    WAL: readers beside one writer). Commands that change the library still refuse while it is in use."""
    from engine.errors import LibraryError
    from engine.services.library import Library

    if read_only:
        try:
            return Library(state.library, read_only=True)
        except LibraryError:
            pass  # no library there yet, or one this version must upgrade first: open it for writing
    return Library(state.library, create=create)


def plain(text) -> str:
    """Text from the library or the user (names, paths, reasons) inside a rich message: brackets in it
    are printed, not read as markup ('facenet-photos[train]' would lose its '[train]')."""
    return escape(shown(str(text)))


def print_error(msg: object) -> None:
    """'error: ' and the message as plain text: names, paths and reasons may hold [brackets] that
    rich would otherwise read as markup (and drop)."""
    err.print(f"[bold red]error:[/] {plain(msg)}", highlight=False, soft_wrap=True)


def fail(msg: str, code: int = 1) -> None:
    print_error(msg)
    raise typer.Exit(code)


@contextmanager
def cancel_on_sigint(message: str):
    """First Ctrl+C asks the running job to stop at a safe point; a second one aborts."""
    cancel = threading.Event()
    old = signal.getsignal(signal.SIGINT)

    def on_sigint(*_):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        err.print(f"[yellow]{plain(message)} (Ctrl+C again to abort)...[/]")

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, old)


def dump_json(obj) -> None:
    # surrogateescape writes non-UTF-8 file names back as the exact bytes they came from
    text = json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n"
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()


def shown(path: str) -> str:
    """A path safe to print: undecodable bytes become U+FFFD."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> int:
    try:
        rc = cli(args=argv, standalone_mode=False)
    except LibraryInUseError as exc:
        print_error(exc)
        err.print("Commands that only look (status, people, show, history, failures, models) work while "
                  "it is open; close the other window or command to make changes.", highlight=False)
        return 3
    except FacenetPhotosError as exc:
        print_error(exc)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        # Usage errors from click (typer may vendor its own copy, so match by shape, not by class).
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return exc.exit_code
        if type(exc).__name__ == "Abort":
            return 130
        raise
    # click returns the code of a typer.Exit when not in standalone mode
    return rc if isinstance(rc, int) else 0
