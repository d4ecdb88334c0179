"""Durations and sizes as people type and read them: ``90s``, ``1h30m``, ``2d``; ``1.5 MB``."""

from __future__ import annotations

import re

from enact.errors import ConfigError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number of seconds, or parts such as ``1h30m``, ``15m``, ``2d``.

    ``ConfigError`` naming the text if it is neither.
    """
    raw = text.strip().lower()
    try:
        value = float(raw)
    except ValueError:
        pos, value = 0, 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            value += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise ConfigError(
                f"not a duration: {text!r} (expected seconds, or a form such as 90s, 15m, "
                "1h30m, 2d)"
            ) from None
    if value < 0 or value != value:
        raise ConfigError(f"a duration must not be negative: {text!r}")
    return value


def format_duration(seconds: float) -> str:
    """``3600`` -> ``1h``, ``5400`` -> ``1h30m``, ``42.5`` -> ``42.5s``."""
    if seconds < 60:
        return f"{seconds:g}s"
    out = ""
    rest = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            out += f"{count}{unit}"
    return out


def format_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KB`` (powers of 1,024)."""
    sign = "-" if count < 0 else ""
    count = abs(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{sign}{count:.0f} {unit}" if unit == "B" else f"{sign}{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
