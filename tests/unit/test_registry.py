"""Registration and type keys (API.md section 1)."""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
from pathlib import Path
from typing import Any

import msgpack
import pytest

import enact


@enact.register
@dataclasses.dataclass
class Plain(enact.Resource):
    x: int


class Foreign:
    def __init__(self, v: int) -> None:
        self.v = v

    @enact.register
    def method(self) -> int:
        return self.v


@enact.register
@dataclasses.dataclass
class ForeignWrapper(enact.TypeWrapper[Foreign]):
    v: int

    @classmethod
    def wrapped_type(cls) -> type[Foreign]:
        return Foreign

    @classmethod
    def wrap(cls, value: Foreign) -> ForeignWrapper:
        return cls(value.v)

    def unwrap(self) -> Foreign:
        return Foreign(self.v)


class ForeignChild(Foreign):
    pass


@enact.register
@dataclasses.dataclass
class AddN(enact.Invokable):
    n: int

    def call(self, x: int) -> int:
        return x + self.n


@enact.register
@enact.typed_invokable(int, str)
@dataclasses.dataclass
class Stringify(enact.Invokable):
    wrong_output: bool = False

    def call(self, x):  # type: ignore[no-untyped-def]
        return x if self.wrong_output else str(x)


@enact.register
def double(x: int) -> int:
    return 2 * x


def test_registry_is_a_singleton() -> None:
    assert enact.Registry.get() is enact.Registry.get()
    assert isinstance(enact.Registry.get(), enact.Registry)


def test_register_returns_the_class_and_makes_it_loadable() -> None:
    registry = enact.Registry.get()
    assert registry.is_registered(Plain)
    assert registry.lookup(Plain.type_id()) is Plain
    assert enact.register(Plain) is Plain  # registering again is harmless
    assert registry.lookup(Plain.type_id()) is Plain


def test_lookup_of_an_unknown_type_names_it() -> None:
    with pytest.raises(enact.UnregisteredResource, match=r"'no\.such\.Type'"):
        enact.Registry.get().lookup("no.such.Type")


@pytest.mark.parametrize("target", [int, object, Foreign, type("Anything", (), {})])
def test_registering_a_non_resource_class_is_a_type_error(target: type) -> None:
    with pytest.raises(TypeError, match=target.__qualname__):
        enact.register(target)


@pytest.mark.parametrize(
    "target", [42, "name", None, [Plain], functools.partial(double, 1), Plain(1)], ids=repr
)
def test_registering_other_objects_is_a_type_error(target: Any) -> None:
    with pytest.raises(TypeError, match="cannot register"):
        enact.register(target)


def test_registering_a_bound_method_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bound method"):
        enact.register(Foreign(1).method)
    with pytest.raises(ValueError, match="bound method"):
        enact.register(Plain.type_id)  # a classmethod, bound to the class
    with pytest.raises(ValueError, match="bound method"):
        enact.register([].append)  # a bound built-in method


def test_a_subclass_without_its_own_dataclass_inherits_its_fields() -> None:
    """As in enact 0.4: ``Resource`` is a dataclass, so a subclass that is not decorated
    again registers fine and has the fields it inherits (here none)."""

    @enact.register
    class NoFields(enact.Resource):
        pass

    @enact.register
    class MoreOfPlain(Plain):
        pass

    assert NoFields.field_names() == () and NoFields() == NoFields()
    assert repr(NoFields()).endswith("NoFields()")
    assert MoreOfPlain.field_names() == ("x",)
    with enact.InMemoryStore() as store:
        assert store.commit(NoFields()).checkout() == NoFields()
        assert store.commit(MoreOfPlain(3)).checkout() == MoreOfPlain(3)


def test_registering_a_wrapper_whose_wrapped_type_is_not_a_type_fails() -> None:
    @dataclasses.dataclass
    class BadWrapper(enact.TypeWrapper[Any]):
        @classmethod
        def wrapped_type(cls) -> Any:
            return "not a type"

        @classmethod
        def wrap(cls, value: Any) -> BadWrapper:
            return cls()

        def unwrap(self) -> Any:
            return None

    with pytest.raises(enact.RegistryError, match="wrapped_type"):
        enact.register(BadWrapper)


def test_wrapper_lookup_follows_subclasses_but_not_for_exact_wrappers() -> None:
    registry = enact.Registry.get()
    assert registry.wrapper_for(Foreign) is ForeignWrapper
    assert registry.wrapper_for(ForeignChild) is ForeignWrapper
    assert registry.wrapper_for(tuple) is not None
    assert registry.wrapper_for(type("T", (tuple,), {})) is None
    assert registry.wrapper_for(type("S", (set,), {})) is None
    assert registry.wrapper_for(object) is None


def test_register_wrapper_for_another_type() -> None:
    class Alias(Foreign):
        pass

    enact.Registry.get().register_wrapper(Alias, ForeignWrapper)
    assert enact.Registry.get().wrapper_for(Alias) is ForeignWrapper


def test_registered_functions_and_methods_still_work_outside_invocations() -> None:
    assert double(4) == 8
    assert Foreign(3).method() == 3


def test_registered_method_call_is_recorded_with_its_instance() -> None:
    with enact.InMemoryStore():
        invocation = enact.invoke(Foreign(5).method)
        assert invocation.get_output() == 5
        assert enact.invocation_summary(invocation).endswith(".method() = 5")


def test_registered_invokable_is_a_resource_and_runs() -> None:
    assert enact.Registry.get().is_registered(AddN)
    assert AddN(2)(3) == 5
    with enact.InMemoryStore():
        assert enact.commit(AddN(2))() == AddN(2)
        assert enact.invoke(AddN(2), (3,)).get_output() == 5


def test_invokable_call_with_two_parameters_is_rejected() -> None:
    @dataclasses.dataclass
    class TwoArgs(enact.Invokable):
        def call(self, a: int, b: int) -> int:
            return a + b

    with pytest.raises(enact.RegistryError, match="at most one"):
        enact.register(TwoArgs)


def test_typed_invokable_checks_input_and_output() -> None:
    with enact.InMemoryStore():
        assert enact.invoke(Stringify(), (3,)).get_output() == "3"
    with pytest.raises(TypeError, match="int"):
        Stringify()("three")
    with pytest.raises(TypeError, match="str"):
        Stringify(wrong_output=True)(3)


# Type keys and distributions -----------------------------------------------------


def test_type_keys_are_module_and_qualified_name() -> None:
    assert Plain.type_id() == f"{__name__}.Plain"
    key = Plain.type_key()
    assert isinstance(key, enact.TypeKey) and key.name == Plain.type_id()
    assert key.type_id() == key.name and enact.__version__ not in key.name
    assert enact.Ref.type_id() == "enact.refs.Ref"
    # enact's own types carry enact's distribution (information only, never hashed).
    assert enact.Ref.type_key().distribution_key == enact.DistributionKey(
        "enact", enact.__version__
    )
    assert enact.TypeKey.from_dict(key.as_dict()) == key
    assert list(Plain.field_descriptors()) == [enact.types.Int()]


def test_distribution_registry_maps_directories_and_files(tmp_path: Path) -> None:
    registry = enact.distribution_registry.DistributionRegistry()
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    registry.register_distribution("pkg", "1.0", str(tmp_path / "pkg"))
    registry.register_distribution("pkg-sub", "2.0", str(tmp_path / "pkg" / "sub"))
    key = registry.get_path_distribution_key
    assert key(str(tmp_path / "pkg" / "mod.py")) == enact.DistributionKey("pkg", "1.0")
    assert key(str(tmp_path / "pkg" / "sub" / "x.py")) == enact.DistributionKey("pkg-sub", "2.0")
    assert key(str(tmp_path / "pkgx" / "mod.py")) is None
    assert registry.get_distribution_key(int) is None  # built-ins have no file
    assert registry.is_registered("pkg") and not registry.is_registered("other")


def test_distribution_registry_reads_installed_metadata() -> None:
    registry = enact.distribution_registry.DistributionRegistry()
    key = registry.register_distribution("msgpack")
    assert key == enact.DistributionKey("msgpack", importlib.metadata.version("msgpack"))
    assert registry.get_path_distribution_key(msgpack.__file__) == key
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        registry.register_distribution("no-such-distribution-for-enact")
    # The running enact is found where it was imported from, however it was installed.
    registry.register_distribution("enact")
    assert registry.get_distribution_key(enact.ResourceBase) == enact.DistributionKey(
        "enact", importlib.metadata.version("enact")
    )


def test_registration_records_the_distribution_of_a_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = enact.distribution_registry.DistributionRegistry()
    monkeypatch.setattr(enact.distribution_registry, "registry", lambda: registry)
    registry.register_distribution("enact-tests", "0.0.1", str(Path(__file__).parent))

    class Local(enact.Resource):
        pass

    assert Local.type_distribution_key() is None
    enact.register(Local)
    assert Local.type_key().distribution_key == enact.DistributionKey("enact-tests", "0.0.1")
