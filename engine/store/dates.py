"""The date a photo was taken, as every feature that asks "when" reads it (search, ages, the
birthday rule of recognition): the EXIF date taken, else the file's modification time, both as local
wall-clock time (EXIF dates carry no time zone)."""

from __future__ import annotations

from datetime import date, datetime


def photo_date(taken_at: datetime | None, mtime: float | None) -> tuple[datetime, str]:
    """(date, "exif" or "file")."""
    if taken_at is not None:
        return taken_at, "exif"
    try:
        return datetime.fromtimestamp(float(mtime or 0.0)), "file"
    except (OverflowError, OSError, ValueError):
        return datetime(1970, 1, 1), "file"


def age_on(birth: date, day: date) -> int:
    """Whole years from ``birth`` to ``day``; negative before the birth."""
    years = day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
    return years if day >= birth else min(-1, years)
