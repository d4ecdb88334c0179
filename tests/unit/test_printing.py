"""Printing (API.md section 5): invocation summaries and pformat/pprint."""

from __future__ import annotations

import io
import re
from typing import Iterator

import flows
import pytest

import enact


@pytest.fixture
def store() -> Iterator[enact.Store]:
    flows.CALLS.clear()
    with enact.InMemoryStore() as s:
        yield s


def test_summary_format(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (2,))
    lines = enact.invocation_summary(inv).splitlines()
    rolls = [c.get_output() for c in inv.get_children()]
    assert lines == [
        f"->roll_sum(2) = {sum(rolls)}",
        f"  ->roll_die(6) = {rolls[0]}",
        f"  ->roll_die(6) = {rolls[1]}",
    ]


def test_summary_options(store: enact.Store) -> None:
    inv = enact.invoke(flows.two_sums, (1,))
    # Without outputs, each line ends in a space, exactly as in enact 0.4.
    assert enact.invocation_summary(inv, show_input=False, show_output=False).splitlines() == [
        "->two_sums(...) ",
        "  ->roll_sum(...) ",
        "    ->roll_die(...) ",
        "  ->roll_sum(...) ",
        "    ->roll_die(...) ",
    ]
    indented = enact.invocation_summary(inv, indent=2, show_output=False).splitlines()
    assert indented[0] == "    ->two_sums(1) "
    assert indented[2] == "        ->roll_die(6) "
    outputs_only = enact.invocation_summary(inv, show_input=False).splitlines()
    assert re.fullmatch(r"->two_sums\(\.\.\.\) = \d+", outputs_only[0])


def test_summary_of_calls_with_kwargs_and_strings(store: enact.Store) -> None:
    inv = enact.invoke(flows.add, (1,), {"b": 2})
    assert enact.invocation_summary(inv) == "->add(1, b=2) = 3"
    inv = enact.invoke(flows.fail, ("it's bad",), wrap_exceptions=True)
    # Arguments and outputs print with str(), as in enact 0.4.
    assert enact.invocation_summary(inv) == "->fail(it's bad) raised ValueError: it's bad"


def test_summary_of_incomplete_and_failed_calls(store: enact.Store) -> None:
    inv = enact.invoke(flows.calls_fail, ("bad",), wrap_exceptions=True)
    lines = enact.invocation_summary(inv).splitlines()
    assert lines[0] == "->calls_fail(bad) raised ValueError: bad"
    assert re.fullmatch(r"  ->roll_die\(6\) = [1-6]", lines[1])
    assert lines[2] == "  ->fail(bad) raised ValueError: bad"
    rewound = inv.rewind(1)
    assert enact.invocation_summary(rewound).splitlines()[0] == "->calls_fail(bad) incomplete"


def test_summary_names_invokables_and_methods(store: enact.Store) -> None:
    inv = enact.invoke(flows.DiceRoll(1, 6))
    assert re.fullmatch(
        r"->DiceRoll\(num_rolls=1, sides_per_die=6\)\(None\) = [1-6]\n  ->roll_die\(6\) = [1-6]",
        enact.invocation_summary(inv),
    )
    inv = enact.invoke(flows.Accumulator(2), (3,))
    assert enact.invocation_summary(inv) == f"->Accumulator(total=2)(3) = {inv.get_output()}"
    inv = enact.invoke(flows.counter_flow, (1,))
    assert enact.invocation_summary(inv).splitlines()[1] == (
        f"  ->Counter(value=0).increment(0) = {inv.get_output()}"
    )
    for line in enact.invocation_summary(inv).splitlines():
        assert "<function" not in line and " at 0x" not in line


def test_summary_of_an_unloadable_function_still_names_it(store: enact.Store) -> None:
    def local_add(a: int) -> int:
        return a + 1

    inv = enact.invoke(local_add, (1,))
    assert enact.invocation_summary(inv) == "->local_add(1) = 2"


def test_summary_of_exception_resource(store: enact.Store) -> None:
    inv = enact.invoke(flows.reject, ("nope",))
    summary = enact.invocation_summary(inv)
    assert summary == "->reject(nope) raised Rejected: reason='nope', code=7"


def test_pformat_of_field_values() -> None:
    """The formats enact 0.4 used, which its users' tests compare against."""
    assert [enact.pformat(v) for v in (None, True, 42, 3.14, "hello", b"hello")] == [
        "None", "True", "42", "3.14", "'hello'", "<5 bytes>"
    ]
    assert enact.pformat([1, 2, 3]) == "[\n  1\n  2\n  3]"
    assert enact.pformat({"a": 1, "b": 2}) == '{\n  "a": 1\n  "b": 2}'
    assert enact.pformat((1, 2, 3)) == "TupleWrapper:\n  value:\n    [\n      1\n      2\n      3]"
    assert enact.pformat(flows.Counter) == "Counter"


def test_pformat_of_resources() -> None:
    # A resource whose fields are all primitive fits on one line.
    assert enact.pformat(flows.Counter(5)) == "Counter(value=5)"
    assert enact.pformat([flows.Counter(1), {"a": flows.Counter(2)}]).splitlines() == [
        "[",
        "  Counter(value=1)",
        '  { "a": Counter(value=2)}]',
    ]
    nested = flows.Accumulator(3)
    assert enact.pformat(enact.CallArgs([nested], {"k": b"xy"})).splitlines() == [
        "CallArgs:",
        "  args: [ Accumulator(total=3)]",
        '  kwargs: { "k": <2 bytes>}',
    ]
    printer = enact.PPrinter(offset=4)
    assert printer.pformat([7, 8]) == "[\n    7\n    8]"


def test_pformat_follows_refs(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (1,))
    lines = enact.pformat(inv).splitlines()
    tag = inv.request.digest[:6]
    assert lines[:3] == ["Invocation:", "  request:", f"    -> Request#{tag}:"]
    assert (
        "      invokable: -> FunctionReference(module='flows', qualname='roll_sum')#"
        + store.commit(enact.wrappers.FunctionReference("flows", "roll_sum")).digest[:6]
    ) in lines
    assert any(line.startswith("      raised_here: False") for line in lines)
    assert f"      output: -> {inv.get_output()}#{inv._response().output.digest[:6]}" in lines
    # Past max_ref_depth, a ref shows only the type of what it points to.
    shallow = enact.PPrinter(max_ref_depth=1).pformat(inv).splitlines()
    assert shallow[:3] == ["Invocation:", "  request:", f"    -> Request#{tag}:"]
    assert "      input: -> CallArgs#" + inv._request().input.digest[:6] in shallow
    repeated = enact.PPrinter(skip_repeated_refs=True).pformat([inv.request, inv.request])
    assert repeated.splitlines()[-1] == f"  -> Request#{tag}]"


def test_pformat_shows_refs_it_cannot_read() -> None:
    inv = enact.Invocation(enact.Ref("ab" * 32), enact.Ref("cd" * 32))
    assert enact.pformat(inv).splitlines() == [
        "Invocation:",
        f"  request: -> {inv.request!r}",
        f"  response: -> {inv.response!r}",
    ]


def test_pprinter_formatters_can_be_added() -> None:
    printer = enact.PPrinter()
    printer.register(int, lambda value, depth: enact.PPValue(f"int:{value}"))
    assert printer.pformat([1, "a"]) == "[\n  int:1\n  'a']"
    assert enact.PPValue("x").contents == []


def test_pprint_writes_pformat(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (1,))
    stream = io.StringIO()
    enact.pprint(inv, stream=stream)
    assert stream.getvalue() == enact.pformat(inv) + "\n"


def test_pprint_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    enact.pprint(flows.Counter(9))
    assert capsys.readouterr().out == "Counter(value=9)\n"
