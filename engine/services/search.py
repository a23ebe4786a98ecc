"""Finding photos by the people in them and by the date they were taken.

The date of a photo is its EXIF date taken (DateTimeOriginal, else DateTime), else the file's
modification time, both as local wall-clock time (EXIF dates carry no time zone).
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import func, select

from engine.errors import EditError
from engine.store.database import LibraryStore
from engine.store.dates import photo_date
from engine.store.schema import DONE, Face, Person, Photo


@dataclass(frozen=True)
class PhotoHit:
    id: int
    path: str
    date: datetime
    date_source: str  # "exif" (date taken) or "file" (modification time)
    people: tuple[tuple[int, str | None], ...]  # (person id, name) of the people in it


_DAY = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


def parse_day(text: str, end: bool = False) -> date:
    """'2021', '2021-06' or '2021-06-15'. A year or month stands for its first day, or with
    ``end`` its last day, so --from 2020 --to 2021 covers both whole years."""
    m = _DAY.match(str(text).strip())
    if not m:
        raise EditError(f"{text!r} is not a date; write it as YYYY-MM-DD, YYYY-MM or YYYY")
    y, mo, d = int(m.group(1)), m.group(2), m.group(3)
    try:
        if mo is None:
            return date(y, 12, 31) if end else date(y, 1, 1)
        if d is None:
            mo_i = int(mo)
            return date(y, mo_i, calendar.monthrange(y, mo_i)[1] if end else 1)
        return date(y, int(mo), int(d))
    except ValueError:
        raise EditError(f"{text!r} is not a real date") from None


def _check(with_people, only: bool, date_from: date | None, date_to: date | None) -> list[int]:
    want = sorted(set(with_people or []))
    if only and not want:
        raise EditError("--only needs at least one person (--with)")
    if date_from and date_to and date_from > date_to:
        raise EditError(f"the date range is empty: {date_from} is after {date_to}")
    return want


def _dated_rows(s, want: list[int], only: bool, date_from: date | None, date_to: date | None):
    """(id, path, date, source) of the imported photos that pass the people and date filters."""
    q = select(Photo.id, Photo.path, Photo.taken_at, Photo.mtime).where(
        Photo.status == DONE, Photo.duplicate_of.is_(None)
    )
    if want:
        having = (
            select(Face.photo_id)
            .where(Face.person_id.in_(want))
            .group_by(Face.photo_id)
            .having(func.count(func.distinct(Face.person_id)) == len(want))
        )
        q = q.where(Photo.id.in_(having))
    if only:
        hidden = select(Person.id).where(Person.hidden.is_(True))
        others = select(Face.photo_id).where(
            Face.person_id.is_(None) | (Face.person_id.not_in(want) & Face.person_id.not_in(hidden))
        )
        q = q.where(Photo.id.not_in(others))
    hits = []
    for pid, path, taken, mtime in s.execute(q):
        when, source = photo_date(taken, mtime)
        if date_from and when.date() < date_from:
            continue
        if date_to and when.date() > date_to:
            continue
        hits.append((pid, path, when, source))
    return hits


def find_photos(
    store: LibraryStore,
    with_people: list[int] | None = None,
    *,
    only: bool = False,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[PhotoHit]:
    """Photos with every one of ``with_people`` in them (AND), oldest first.

    With ``only``, photos in which nobody else is seen: a face of another person, or a face in no
    group, excludes the photo; faces of hidden people (strangers the user put away) do not.
    Dates are inclusive days.
    """
    want = _check(with_people, only, date_from, date_to)
    with store.session() as s:
        hits = _dated_rows(s, want, only, date_from, date_to)
        people: dict[int, list[tuple[int, str | None]]] = defaultdict(list)
        ids = [h[0] for h in hits]
        for i in range(0, len(ids), 900):
            for photo_id, person_id, name in s.execute(
                select(Face.photo_id, Person.id, Person.name)
                .join(Person, Person.id == Face.person_id)
                .where(Face.photo_id.in_(ids[i : i + 900]))
                .distinct()
                .order_by(Person.name, Person.id)
            ):
                people[photo_id].append((person_id, name))
    hits.sort(key=lambda h: (h[2], h[1]))
    return [PhotoHit(pid, path, when, src, tuple(people.get(pid, ()))) for pid, path, when, src in hits]


# ---------------------------------------------------------------------------------------------------------------
# The photo grid's timeline: the same filters, newest first, in months

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


@dataclass(frozen=True)
class Month:
    year: int
    month: int
    start: int  # index of its first photo in ``Timeline.photos``
    count: int

    @property
    def label(self) -> str:
        return f"{MONTHS[self.month - 1]} {self.year}"


@dataclass(frozen=True)
class Timeline:
    """Photos newest first, as (id, path, date, "exif" | "file") tuples (plain tuples: a grid of 100,000
    photos builds them in a fraction of a second), and the months they fall in, newest first."""

    photos: list[tuple[int, str, datetime, str]]
    months: list[Month]
    # photo id -> its place in ``photos``; built with the timeline, on the thread that builds it (a dict of
    # 100,000 photos costs a tenth of a second the GUI thread need not spend).
    index: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.photos)

    def position(self, photo_id: int) -> int | None:
        if not self.index and self.photos:
            self.index.update((p[0], i) for i, p in enumerate(self.photos))
        return self.index.get(photo_id)


def photo_timeline(
    store: LibraryStore,
    with_people: list[int] | None = None,
    *,
    only: bool = False,
    date_from: date | None = None,
    date_to: date | None = None,
    folder: str | None = None,
) -> Timeline:
    """What the photo grid shows: the photos ``find_photos`` finds with the same filters (every one of
    ``with_people``, ``only`` them, the date range), optionally only those directly in ``folder``, by
    date taken, newest first, with their months."""
    want = _check(with_people, only, date_from, date_to)
    with store.session() as s:
        hits = _dated_rows(s, want, only, date_from, date_to)
    if folder is not None:
        prefix = folder.rstrip("/\\")
        hits = [h for h in hits if str(Path(h[1]).parent) == prefix]
    hits.sort(key=lambda h: (h[2], h[1]), reverse=True)
    months: list[Month] = []
    start = 0
    for i in range(1, len(hits) + 1):
        if i == len(hits) or (hits[i][2].year, hits[i][2].month) != (hits[start][2].year, hits[start][2].month):
            d = hits[start][2]
            months.append(Month(d.year, d.month, start, i - start))
            start = i
    return Timeline(hits, months, {p[0]: i for i, p in enumerate(hits)})
