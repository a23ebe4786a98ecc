"""Face thumbnails, loaded lazily off the GUI thread and kept in a small LRU cache.

Views ask :meth:`Thumbnails.get` while painting; a miss queues the face and returns None (the delegate
draws a placeholder). Loader jobs take the most recently requested faces first, so what is on screen
now comes before what scrolled past; the queue is bounded and older requests are dropped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPainterPath, QPixmap

from . import pyside_compat  # noqa: F401  (must run before any Qt call)

MISSING = object()


def _filling(path, size: int) -> QImage | None:
    """The image file at ``path`` scaled (smoothly) until it covers a ``size`` px square; None when there is
    no file or it cannot be read. The callers cut the square out of its middle."""
    if path is None:
        return None
    img = QImage(str(path))
    if img.isNull():
        return None
    return img.scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation
    )


def load_face_image(library, face_id: int, size: int, round_: bool) -> QImage | None:
    """Runs on a pool thread: the face's thumbnail scaled to ``size`` px, optionally cut to a circle."""
    img = _filling(library.thumbnail(face_id), size)
    if img is None:
        return None
    out = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    p = QPainter(out)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    clip = QPainterPath()
    if round_:
        clip.addEllipse(QRectF(0, 0, size, size))
    else:
        clip.addRoundedRect(QRectF(0, 0, size, size), size * 0.06, size * 0.06)
    p.setClipPath(clip)
    p.drawImage(0, 0, img, (img.width() - size) // 2, (img.height() - size) // 2)
    p.end()
    return out


def load_photo_image(library, photo_id: int, size: int, _round: bool, photo_path: str | None = None) -> QImage | None:
    """Runs on a pool thread: the whole photo's cached thumbnail (made by the engine), cut to fill a
    ``size`` px square, as the photo grid shows it."""
    img = _filling(library.photo_thumbnail(photo_id, photo_path), size)
    if img is None:
        return None
    return img.copy((img.width() - size) // 2, (img.height() - size) // 2, size, size)


class Thumbnails(QObject):
    """One cache per rendering (round covers, square faces, whole photos). ``ready(id)`` fires when one
    arrives. ``loader(library, id, px, round_)`` makes the image on a pool thread (faces by default)."""

    ready = Signal(int)

    def __init__(self, jobs, library=None, *, size: int = 112, round_: bool = False, capacity: int = 3000,
                 loaders: int = 2, max_queue: int = 600, dpr: float = 1.0, loader=None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.loader = loader or load_face_image
        self.jobs = jobs
        self.library = library
        self.size, self.round = size, round_
        self.px = max(1, int(size * dpr))
        self.dpr = dpr
        self.capacity, self.loaders, self.max_queue = capacity, loaders, max_queue
        self._cache: OrderedDict[int, object] = OrderedDict()
        self._queue: deque[int] = deque()
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._running = 0
        self._generation = 0

    def set_library(self, library) -> None:
        self.library = library
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._pending.clear()
            self._generation += 1
        self._cache.clear()

    def forget(self, face_ids) -> None:
        for f in face_ids:
            self._cache.pop(int(f), None)

    def get(self, face_id: int | None) -> QPixmap | None:
        if face_id is None:
            return None
        hit = self._cache.get(face_id)
        if hit is not None:
            self._cache.move_to_end(face_id)
            return None if hit is MISSING else hit
        self.request(face_id)
        return None

    def request(self, face_id: int) -> None:
        if self.library is None:
            return
        with self._lock:
            if face_id in self._pending:
                # Seen again: move it to the front of the line (it is on screen now).
                try:
                    self._queue.remove(face_id)
                except ValueError:
                    return  # being loaded right now
                self._queue.append(face_id)
                return
            self._pending.add(face_id)
            self._queue.append(face_id)
            while len(self._queue) > self.max_queue:
                self._pending.discard(self._queue.popleft())
        self._kick()

    def _kick(self) -> None:
        while self._running < self.loaders and self._queue:
            self._running += 1
            job = self.jobs.start(
                self._drain, self.library, self._generation, stream=True, pass_cancel=True,
                on_progress=self._arrived, on_finished=self._drained, name="thumbnails",
            )
            if job is None:
                self._running -= 1
                return

    def _drain(self, library, generation: int, cancel: threading.Event):
        """Pool thread: load queued faces, newest request first, until the queue is empty."""
        while not cancel.is_set():
            with self._lock:
                if generation != self._generation or not self._queue:
                    return
                fid = self._queue.pop()
            img = self.loader(library, fid, self.px, self.round)
            yield generation, fid, img

    def _arrived(self, item) -> None:
        generation, fid, img = item
        with self._lock:
            self._pending.discard(fid)
            if generation != self._generation:
                return
        if img is None:
            self._cache[fid] = MISSING
        else:
            pm = QPixmap.fromImage(img)
            pm.setDevicePixelRatio(self.dpr)
            self._cache[fid] = pm
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(fid)

    def _drained(self) -> None:
        self._running -= 1
        if self._queue:
            self._kick()
