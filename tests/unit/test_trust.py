"""Only registered code resolves and runs (issue 9), without a cluster.

Stored data names functions, types and modules by module and qualified name.
Being imported in this process is not enough to be resolved: a name must be
registered (or a built-in type). The worker-side versions of these attacks, on
real Celery workers, are in ``tests/worker/test_security.py``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import flows
import pytest

import enact
from enact.records import BoundMethod, CallArgs
from enact.trust import registered_target, worker_target
from enact.wrappers import BuiltinFunctionReference, FunctionReference, TypeReference
from tests import crafted


@pytest.fixture
def store() -> enact.Store:
    return enact.InMemoryStore()


@enact.register
class Mood(enum.Enum):
    CALM = "calm"
    ANGRY = "angry"


@enact.register
def ask_mood() -> Mood:
    return enact.request_input(Mood, for_value="How do you feel?")


@enact.typed_invokable(int, int)
@dataclasses.dataclass
class AddOne(enact.Invokable):
    def call(self, x):  # type: ignore[no-untyped-def]
        return x + 1


# Stored references resolve through the registry only ------------------------------


@pytest.mark.parametrize("name", list(crafted.dangerous_targets("unused")))
def test_crafted_references_to_unregistered_code_neither_load_nor_run(
    store: enact.Store, name: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    reference, args = crafted.dangerous_targets(marker)[name]
    with store:
        with pytest.raises(enact.UnregisteredResource, match="is not registered"):
            enact.commit(reference).checkout()
        recorded = crafted.invocation(store, reference, args)
        with pytest.raises(enact.UnregisteredResource, match=r"\.|lambda"):
            recorded.replay()
        with pytest.raises(enact.UnregisteredResource):
            enact.InvocationGenerator.from_invocation(recorded)
    assert not marker.exists()


def test_a_crafted_method_whose_function_is_not_registered_does_not_run(
    store: enact.Store, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    # The function of a method resolved to something callable but unregistered:
    # a built-in type, and a registered resource class.
    for function in (TypeReference("builtins", "str"), flows.Counter):
        with store:
            method = BoundMethod(crafted.shell_command(marker), function)
            recorded = crafted.invocation(store, method, [])
            with pytest.raises(enact.UnregisteredResource, match="not a registered function"):
                recorded.replay()
    assert not marker.exists()


def test_a_crafted_record_of_a_non_callable_is_refused(store: enact.Store) -> None:
    with store:
        recorded = crafted.invocation(store, "print", [])
        with pytest.raises(enact.DeserializationError, match="cannot be called"):
            recorded.replay()


def test_decoding_touches_no_lazy_module_attribute(python_env: dict[str, str]) -> None:
    # enact.stores hands out S3Backend through a module __getattr__ that imports
    # boto3: resolving by name must not call it, for types or functions.
    code = textwrap.dedent(
        """
        import sys
        import enact
        from enact.wrappers import FunctionReference, TypeReference
        assert "enact.stores" in sys.modules and "boto3" not in sys.modules
        with enact.InMemoryStore() as store:
            for reference in (
                TypeReference("enact.stores", "S3Backend"),
                FunctionReference("enact.stores", "S3Backend"),
                TypeReference("enact.stores", "RedisState"),
            ):
                ref = enact.commit(reference)
                try:
                    ref.checkout()
                except enact.UnregisteredResource as exc:
                    assert "enact.stores." in str(exc), exc
                else:
                    raise SystemExit("resolved " + repr(reference))
        loaded = sorted(m for m in ("boto3", "botocore", "redis", "multiprocessing")
                        if m in sys.modules)
        print("loaded:", loaded)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=python_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "loaded: []"


def test_names_in_errors_are_cut_short(store: enact.Store) -> None:
    with store:
        ref = enact.commit(FunctionReference("x" * 100_000, "f"))
        with pytest.raises(enact.UnregisteredResource) as info:
            ref.checkout()
    assert len(str(info.value)) < 1000


# What can be made resolvable --------------------------------------------------------


def test_builtin_exceptions_come_back_as_themselves_others_as_records() -> None:
    assert isinstance(enact.NativeException("KeyError", "k").to_builtin(), KeyError)
    for name in ("os.system", "eval", "SystemExit", "int", "KeyboardInterrupt"):
        record = enact.NativeException(name, "x")
        assert record.to_builtin() is record


def test_an_enum_is_a_requested_type_and_its_members_answers(store: enact.Store) -> None:
    with store:
        generator = enact.InvocationGenerator.from_callable(ask_mood)
        request = next(generator)
        assert request.requested_type is Mood
        with pytest.raises(TypeError, match="Mood"):
            generator.set_input("calm")
        generator.set_input(Mood.ANGRY)
        assert list(generator) == []
        assert generator.invocation is not None
        assert generator.invocation.get_output() is Mood.ANGRY
        replayed = generator.invocation.rewind(0).replay()
        assert replayed.get_output() is Mood.ANGRY


def test_an_unregistered_enum_is_stored_but_not_resolved(store: enact.Store) -> None:
    Local = enum.Enum("Local", ["A"])  # noqa: N806
    with store:
        ref = enact.commit([Local, Local.A])
        with pytest.raises(enact.UnregisteredResource, match="Local"):
            ref.checkout()


def test_typed_invokable_registers_the_class(store: enact.Store) -> None:
    assert enact.Registry.get().is_registered(AddOne)
    with store:
        invocation = enact.invoke(AddOne(), (1,))
        assert invocation.replay().get_output() == 2
    with pytest.raises(TypeError, match="Invokable"):
        enact.typed_invokable(int, int)(Mood)


def test_register_accepts_enums_and_modules_but_still_no_plain_classes() -> None:
    assert enact.register(Mood) is Mood
    assert enact.register(textwrap) is textwrap
    with pytest.raises(TypeError, match="cannot register"):
        enact.register(type("Plain", (), {}))


def test_the_enact_package_is_the_only_module_that_loads_without_being_registered(
    store: enact.Store,
) -> None:
    """enact 0.4 stored any module; ours loads only registered ones, and its own package
    (loading it runs nothing new). Its submodules and other modules are still refused."""
    import json

    import enact.calls
    import enact.stores

    with store:
        assert enact.commit({"module": enact}).checkout()["module"] is enact
        for module in (json, enact.calls, enact.stores):
            with pytest.raises(enact.UnregisteredResource, match="is not registered"):
                enact.commit(module).checkout()


# The caller-side check of submit, map and replay_many ---------------------------------


def local_and_lambda() -> list[Any]:
    @enact.register
    def local(x: int) -> int:
        return x

    return [local, enact.register(lambda x: x)]


def test_registered_targets_are_accepted_as_they_are() -> None:
    assert registered_target(flows.roll_die) is flows.roll_die
    assert worker_target(flows.roll_die) is flows.roll_die
    counter = flows.Counter(1)
    assert worker_target(counter.increment).function is flows.Counter.increment
    assert worker_target(flows.DiceRoll(2, 6)) == flows.DiceRoll(2, 6)
    # A plain function registered with enact.register(f) is found from f itself.
    assert worker_target(flows.plain_for_trust) is flows.registered_plain_for_trust


@pytest.mark.parametrize(
    "target",
    [subprocess.getoutput, os.system, eval, exec, print, flows.unregistered_roll, str],
    ids=lambda t: getattr(t, "__qualname__", repr(t)),
)
def test_unregistered_targets_are_refused_with_advice(target: Any) -> None:
    for check in (registered_target, worker_target):
        with pytest.raises(enact.UnregisteredResource, match="register it with @enact.register"):
            check(target)


def test_unregistered_method_and_invokable_are_refused() -> None:
    @dataclasses.dataclass
    class NotRegistered(enact.Invokable):
        def call(self) -> int:
            return 1

    with pytest.raises(enact.UnregisteredResource, match="NotRegistered"):
        worker_target(NotRegistered())
    with pytest.raises(enact.UnregisteredResource, match="method"):
        worker_target(flows.Counter(1).__repr__)


def test_lambdas_and_local_functions_cannot_run_on_a_worker() -> None:
    local, anonymous = local_and_lambda()
    assert registered_target(local) is local  # fine in this process
    with pytest.raises(enact.UnregisteredResource, match="inside a function"):
        worker_target(local)
    with pytest.raises(enact.UnregisteredResource, match="a lambda"):
        worker_target(anonymous)


def test_functions_of_main_cannot_run_on_a_worker(python_env: dict[str, str]) -> None:
    code = textwrap.dedent(
        """
        import enact
        from enact.trust import worker_target

        @enact.register
        def main():
            return 1

        try:
            worker_target(main)
        except enact.UnregisteredResource as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=python_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "__main__" in out.stdout and "ENACT_IMPORTS" in out.stdout


def test_non_callables_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot run"):
        worker_target(42)


def test_call_args_with_non_str_keywords_are_refused(store: enact.Store) -> None:
    import msgpack

    from enact.serialization import pack_value, unpack_value

    data = pack_value(CallArgs([1], {"a": 2}))[0]
    forged = data.replace(msgpack.packb("a"), msgpack.packb(b"a"))
    assert forged != data
    with pytest.raises(enact.DeserializationError, match="str keys"):
        unpack_value(forged)


def test_builtin_function_reference_names_the_function(store: enact.Store) -> None:
    with store:
        ref = enact.commit(BuiltinFunctionReference("posix", "system"))
        with pytest.raises(enact.UnregisteredResource, match="posix.system"):
            ref.checkout()


def test_the_readme_registration_example_runs(python_env: dict[str, str], tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Trust boundary", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "registration.py"
    script.write_text(code)
    out = subprocess.run(
        [sys.executable, str(script)], env=python_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["Mood.CALM", "date"]
