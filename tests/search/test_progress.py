"""enact.progress: silent off a terminal, rate-limited and complete on one."""

from __future__ import annotations

import io
import threading

from enact.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress(total=10, stream=stream) as bar:
        for _ in range(10):
            bar.advance(extra="best 0.5")
    assert stream.getvalue() == ""
    assert bar.done == 10


def test_draws_on_a_terminal_and_ends_with_the_final_state() -> None:
    stream = Tty()
    with Progress(total=4, label="mcts", stream=stream, rate_hz=0) as bar:
        bar.update(done=2, extra="best 0.92")
        bar.advance(2)
    text = stream.getvalue()
    assert text.endswith("\n")
    last = text.rstrip("\n").split("\r")[-1].rstrip()
    assert last == "mcts [" + "#" * 24 + "] 4/4 best 0.92"
    assert "2/4 best 0.92" in text


def test_rate_limit_skips_intermediate_draws() -> None:
    stream = Tty()
    # A rate so low that only the forced draws (enter, close) happen.
    with Progress(total=1000, stream=stream, rate_hz=1e-6) as bar:
        for _ in range(1000):
            bar.advance()
    assert stream.getvalue().count("\r") == 2
    assert "1000/1000" in stream.getvalue()


def test_unknown_total_and_threads() -> None:
    stream = Tty()
    bar = Progress(stream=stream, rate_hz=0)
    def work() -> None:
        for _ in range(100):
            bar.advance()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    bar.close()
    assert bar.done == 400
    assert stream.getvalue().rstrip("\n").split("\r")[-1].strip() == "400"
    assert stream.getvalue().count("\n") == 1


def test_enabled_overrides_the_terminal_check() -> None:
    stream = Tty()
    with Progress(total=1, stream=stream, enabled=False) as bar:
        bar.advance()
    assert stream.getvalue() == ""
