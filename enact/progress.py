"""A one-line progress display on a terminal.

`Progress` draws ``label [#####.....] done/total extra`` on one line of a stream
(stderr by default), redrawing in place at most ``rate_hz`` times a second. When the
stream is not a terminal it writes nothing at all, so logs, pipes and tests stay clean.

Use it as a context manager; the line is finished (final state, newline) on exit::

    from enact.progress import Progress

    with Progress(total=128, label="mcts") as bar:
        for i in range(128):
            ...
            bar.advance(1, extra=f"best {best:.2f}")   # or bar.update(done=i + 1)

* ``total`` may be ``None`` (unknown): the line shows a count without a bar.
* ``update(done=..., total=..., extra=...)`` sets any of the three; ``advance(n)`` adds
  to ``done``. Both are cheap when nothing is drawn (rate limit or not a terminal) and
  safe to call from several threads.
* ``enabled`` forces drawing on (``True``) or off (``False``); ``None`` asks the
  stream's ``isatty()``.

Nothing here imports another enact module: any layer may use it.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

DEFAULT_RATE_HZ = 10.0
DEFAULT_WIDTH = 24


class Progress:
    """A rate-limited progress line; silent unless the stream is a terminal."""

    def __init__(
        self,
        total: int | None = None,
        *,
        label: str = "",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        rate_hz: float = DEFAULT_RATE_HZ,
        width: int = DEFAULT_WIDTH,
    ) -> None:
        self.total = total
        self.done = 0
        self.extra = ""
        self.label = label
        self._stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self._stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._interval_s = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self._width = width
        self._last_draw = float("-inf")
        self._last_len = 0
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def update(
        self,
        done: int | None = None,
        *,
        total: int | None = None,
        extra: str | None = None,
    ) -> None:
        """Set the count, the total and/or the extra text, then redraw if due."""
        with self._lock:
            if done is not None:
                self.done = done
            if total is not None:
                self.total = total
            if extra is not None:
                self.extra = extra
        self._draw()

    def advance(self, n: int = 1, *, extra: str | None = None) -> None:
        """Add ``n`` to the count (and set the extra text), then redraw if due."""
        with self._lock:
            self.done += n
            if extra is not None:
                self.extra = extra
        self._draw()

    def close(self) -> None:
        """Draw the final state and end the line; idempotent."""
        if self._closed:
            return
        self._draw(force=True)
        self._closed = True
        if self.enabled:
            self._stream.write("\n")
            self._stream.flush()

    def render(self) -> str:
        """The text of the line as it would be drawn now."""
        parts = [self.label] if self.label else []
        if self.total:
            filled = min(self._width, self._width * self.done // self.total)
            parts.append("[" + "#" * filled + "." * (self._width - filled) + "]")
            parts.append(f"{self.done}/{self.total}")
        else:
            parts.append(str(self.done))
        if self.extra:
            parts.append(self.extra)
        return " ".join(parts)

    def _draw(self, force: bool = False) -> None:
        if not self.enabled or self._closed:
            return
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last_draw < self._interval_s:
                return
            self._last_draw = now
            line = self.render()
            # Pad with spaces so a shorter line fully covers the previous one.
            pad = max(0, self._last_len - len(line))
            self._last_len = len(line)
            self._stream.write("\r" + line + " " * pad)
            self._stream.flush()
