"""Why an image cannot be read, in words a person understands.

Decoders speak in their own terms ("decoder error -2", "broken data stream", "Unsupported BMP
header type (41)"); the user gets a plain reason, and the decoder's own message goes to the log
(logger ``facenet_photos.decode``), where a bug report can quote it.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger("facenet_photos.decode")

DAMAGED = "damaged image data (the file is corrupt or was not saved completely)"
TRUNCATED = "file is truncated (an incomplete download or copy?)"
NOT_IMAGE = "not an image, or a format that cannot be read"

# (pattern on the decoder's message, plain reason); the first match wins. \1 keeps a number.
_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"truncated|premature end|unexpected end|not enough data|eof", re.I), TRUNCATED),
    (re.compile(r"unsupported bmp pixel depth \((\d+)\)", re.I), r"unsupported BMP variant (\1 bits per pixel)"),
    (re.compile(r"unsupported bmp compression \((\d+)\)", re.I), r"unsupported BMP variant (compression type \1)"),
    (re.compile(r"unsupported bmp header type", re.I), "unsupported BMP variant (an unknown kind of header)"),
    (re.compile(r"unsupported bmp palette size|palette size|palette", re.I), "damaged colour palette"),
    (re.compile(r"unsupported bmp", re.I), "unsupported BMP variant"),
    (re.compile(r"could not create decoder|unknown compression|no decoder|unsupported compression", re.I),
     "unsupported variant of this format (its compression cannot be read)"),
    (re.compile(r"cannot identify|not a .* file|unrecognized|invalid signature|bad magic", re.I), NOT_IMAGE),
    (re.compile(r"decoder error|broken data stream|crc|checksum|incorrect data|invalid|corrupt|bad|"
                r"cannot decode|decoding", re.I), DAMAGED),
]


def plain_reason(message: str, *, path: object = None) -> str:
    """A decoder's message -> a plain reason (logging the original)."""
    raw = " ".join(str(message).split()) or "no message"
    log.info("%s: %s", path or "image", raw)
    for pattern, reason in _RULES:
        m = pattern.search(raw)
        if m:
            return m.expand(reason) if "\\" in reason else reason
    return DAMAGED
