"""The differential cases: short programs written against enact 0.4's API.

Each runs against ours and, when its interpreter is available, against the
original enact 0.4.15; what they print is compared (see ``test_differential``).
``EXPECTED`` in ``expected.py`` holds what each printed against the original
(captured, and checked again whenever the original is present), so ours is held
to it even where the original cannot run. A case in ``DIFFERENCES`` differs on
purpose: ours fixes what API.md asks to fix, as listed in the README's
"Differences from enact 0.4".
"""

# ruff: noqa: E501  (the cases are programs in strings, kept as a user would write them)

from __future__ import annotations

import textwrap

_SOURCES: dict[str, str] = {}


def case(name: str, source: str) -> None:
    _SOURCES[name] = textwrap.dedent(source).lstrip("\n")


# Cause 1: subclasses of enact's dataclass bases without their own @dataclass ---------

case("exception_resource_subclass", '''
    import enact

    @enact.register
    class ValueErrorResource(enact.ExceptionResource):
        pass

    @enact.register
    def check(x: int) -> int:
        if x < 0:
            raise ValueErrorResource("negative", x)
        return x

    with enact.InMemoryStore() as store:
        invocation = enact.invoke(check, (-2,))
        raised = invocation.get_raised()
        show("type", type(raised).__name__)
        show("args", raised.args)
        show("str", str(raised))
        show("successful", invocation.successful())
        again = store.commit(ValueErrorResource("again")).checkout()
        show("checked out", (type(again).__name__, again.args))
        show("fields", list(ValueErrorResource.field_names()))
        raises("raise base", lambda: (_ for _ in ()).throw(enact.ExceptionResource("base")))
        show("registered", enact.Registry.get().lookup(ValueErrorResource.type_id()) is ValueErrorResource)
''')

case("typed_invokable_without_dataclass", '''
    import enact

    def make():
        @enact.typed_invokable(int, str)
        class WrongOutputType(enact.Invokable):
            def call(self, value: int) -> str:
                return value

        @enact.typed_invokable(int, str)
        class Right(enact.Invokable):
            def call(self, value: int) -> str:
                return str(value)

        return WrongOutputType, Right

    WrongOutputType, Right = make()
    raises("wrong output", lambda: WrongOutputType()(1), TypeError)
    raises("wrong input", lambda: Right()("1"), TypeError)
    show("right", Right()(7))
    show("types", (Right.get_input_type(), Right.get_output_type()))
    show("fields", list(Right.field_names()))
    show("equal", Right() == Right())
    show("registered", enact.Registry.get().lookup(Right.type_id()) is Right)
    with enact.InMemoryStore() as store:
        invocation = Right().invoke(enact.commit(5))
        show("output", invocation.get_output())
        show("invokable", type(invocation.request().invokable()).__name__)
''')

case("register_undecorated_subclasses", '''
    import dataclasses
    import enact

    @enact.register
    class Empty(enact.Resource):
        pass

    @enact.register
    @dataclasses.dataclass
    class Point(enact.Resource):
        x: int
        y: int

    @enact.register
    class Point3(Point):
        pass

    class Foreign:
        pass

    @enact.register
    class ForeignWrapper(enact.TypeWrapper[Foreign]):
        @classmethod
        def wrapped_type(cls):
            return Foreign

        @classmethod
        def wrap(cls, value):
            return cls()

        def unwrap(self):
            return Foreign()

    @enact.register
    class NoArg(enact.Invokable):
        def call(self):
            return 3

    @enact.register
    class AsyncNoArg(enact.AsyncInvokable):
        async def call(self):
            return 4

    show("fields", (list(Empty.field_names()), list(Point3.field_names())))
    show("equal", (Empty() == Empty(), Point3(1, 2) == Point3(1, 2)))
    with enact.InMemoryStore() as store:
        show("empty", type(store.commit(Empty()).checkout()).__name__)
        show("point3", store.commit(Point3(1, 2)).checkout() == Point3(1, 2))
        show("foreign", type(store.commit(Foreign()).checkout()).__name__)
        show("no arg", NoArg().invoke().get_output())
        import asyncio
        show("async no arg", asyncio.run(AsyncNoArg().invoke()).get_output())
    raises("not a resource", lambda: enact.register(Foreign), TypeError)
''')

case("registration_checks_call_signatures", '''
    import enact

    class TooMany(enact.Invokable):
        def call(self, x, y):
            pass

    class KeywordOnly(enact.Invokable):
        def call(self, *, x):
            pass

    class Static(enact.Invokable):
        @staticmethod
        def call(x):
            pass

    for cls in (TooMany, KeywordOnly, Static):
        raises(cls.__name__, lambda: enact.register(cls), TypeError)

    @enact.register
    class Typed(enact.Invokable):
        def call(self, x: int) -> str:
            return str(x)

    @enact.register
    class Untyped(enact.Invokable):
        def call(self, x):
            return x

    show("typed", (Typed.get_input_type(), Typed.get_output_type()))
    show("untyped", (Untyped.get_input_type(), Untyped.get_output_type()))
''')

# Cause 2: objects obtained from a store work after its block ---------------------------

case("seed_example_after_the_block", '''
    import random
    import enact

    random.seed(3)

    @enact.register
    def roll_die(sides: int) -> int:
        """Roll a die."""
        return random.randint(1, sides)

    @enact.register
    def roll_sum(num_rolls: int) -> int:
        """Roll dice."""
        return sum(roll_die(6) for _ in range(num_rolls))

    with enact.InMemoryStore() as store:
        invocation = enact.invoke(roll_sum, (2,))
    print(enact.invocation_summary(invocation))
    show("outputs", [c.get_output() for c in invocation.get_children()])
    show("input", invocation.get_input().args)
    show("output", invocation.get_output())
''')

# Cause 3: the original's module paths and names --------------------------------------

case("module_paths", '''
    import importlib
    import enact

    names = {
        "invocations": "AsyncInvokable AsyncInvokableBase Builder ExceptionResource "
        "IncompleteSubinvocationError InputChanged InputRequest InputRequestOutsideInvocation "
        "Invocation InvocationBuildFailure InvocationError Invokable InvokableBase "
        "InvokableTypeError NativeException ReplayContext ReplayError Request RequestInput "
        "RequestedTypeUndetermined Response request_input typed_invokable _InvokableBase",
        "references": "PackedResource Ref RefError Store InMemoryStore FileStore "
        "InMemoryBackend FileBackend StorageBackend NotFound DistributionKeyError commit "
        "checkout commit_async checkout_async",
        "resource_registry": "Registry RegistryError UnregisteredResource MissingWrapperError "
        "FunctionWrapper MethodWrapper FieldValueWrapper NoneWrapper PrimitiveWrapper "
        "IntWrapper FloatWrapper BoolWrapper StrWrapper BytesWrapper ListWrapper DictWrapper "
        "ResourceTypeWrapper register register_wrapper wrap unwrap wrap_type unwrap_type "
        "to_python_type from_python_type deepcopy to_field_value from_field_value "
        "from_resource_dict",
        "type_wrappers": "TupleWrapper SetWrapper TypeDescriptorWrapper ModuleWrapper",
        "interfaces": "FieldValue ResourceDictValue FieldTypeError ResourceBase ResourceDict "
        "TypeWrapperBase FrameworkError ImplementationMissing",
        "contexts": "Context AsyncContext ContextError ContextTypeError NoActiveContext "
        "register register_to_superclass with_current_contexts with_new_contexts",
        "pretty_print": "PPValue PPrinter pformat pprint invocation_summary",
        "function_wrappers": "CallArgs invoke invoke_async register get_wrapper_type",
        "registration": "register",
        "serialization": "Serializer JsonSerializer SerializationError DeserializationError",
        "invocation_generators": "InvocationGenerator",
        "types": "TypeKey DistributionKey TypeDescriptor Int Float Str Bool Bytes List Dict "
        "Union NoneType ResourceType PRIMITIVES Primitives Json JsonLeaf",
        "distribution_registry": "DistributionRegistry registry register_distribution "
        "get_distribution_key get_path_distribution_key",
        "resource_digests": "resource_digest",
        "digests": "digest",
        "utils": "cached_property walk_resource walk_resource_dict",
        "version": "DIST_NAME DIST_PYTHON_DIR __version__",
        "acyclic": "CycleDetected",
        "type_inference": "from_annotation TypeInferenceFailed",
    }
    for module_name, wanted in sorted(names.items()):
        module = importlib.import_module(f"enact.{module_name}")
        missing = [n for n in wanted.split() if not hasattr(module, n)]
        show(module_name, missing)
        show(f"enact.{module_name} attribute", getattr(enact, module_name) is module)
    top = "FieldValue ResourceDictValue ResourceDict TypeWrapperBase contexts _InvokableBase"
    show("top level", [n for n in top.split() if not hasattr(enact, n)])
    show("version is a str", isinstance(enact.__version__, str))
''')

case("registry_and_wrapping", '''
    import dataclasses
    import types
    from typing import Any
    import enact
    from enact import resource_registry

    @dataclasses.dataclass
    class Custom:
        values: tuple

    @enact.register
    @dataclasses.dataclass
    class CustomWrapper(enact.TypeWrapper[Custom]):
        values: list

        @classmethod
        def wrapped_type(cls):
            return Custom

        @classmethod
        def wrap(cls, value):
            return cls(list(value.values))

        def unwrap(self):
            return Custom(tuple(self.values))

    for value in (None, 1, 1.5, "a", b"ab", [1, 2], {"k": 1}):
        wrapped = enact.wrap(value)
        show(f"wrap {value!r}", (type(wrapped).__name__, isinstance(wrapped, enact.TypeWrapperBase),
                                 enact.unwrap(wrapped) == value))
    nested = {"a": [Custom((1, 2)), {"b": Custom((3,))}]}
    show("nested", enact.unwrap(enact.wrap(nested)) == nested)
    show("types", resource_registry.to_field_value([int, [float, bytes]]) == [
        resource_registry.IntWrapper, [resource_registry.FloatWrapper, resource_registry.BytesWrapper]])
    show("types back", resource_registry.from_field_value(resource_registry.to_field_value([int, str])))
    show("type wrapper", type(enact.wrap(int)).__name__)
    class Unregistered:
        pass
    raises("unregistered type", lambda: enact.wrap(Unregistered), resource_registry.MissingWrapperError)
    raises("unregistered value", lambda: enact.wrap(Unregistered()), enact.FieldTypeError)

    registry = enact.Registry()
    @dataclasses.dataclass
    class Fresh(enact.Resource):
        x: int
    registry.register(Fresh)
    show("lookup", registry.lookup(Fresh.type_id()) is Fresh)
    raises("register int", lambda: registry.register(int), enact.RegistryError)
    raises("lookup missing", lambda: registry.lookup("no.such.Type"), enact.UnregisteredResource)

    def foo(x):
        return x
    @dataclasses.dataclass
    class FooMethod(resource_registry.MethodWrapper):
        instance: Any
        @classmethod
        def wrapper_function(cls):
            return foo
    @dataclasses.dataclass
    class FooFunction(resource_registry.FunctionWrapper):
        @classmethod
        def wrapper_function(cls):
            return foo
        @classmethod
        def wrapped_function(cls):
            return foo
        @classmethod
        def method_wrapper(cls):
            return FooMethod
    registry.register(FooFunction)
    show("function wrapper", registry.wrap(foo) == FooFunction())
    show("function back", registry.unwrap(registry.wrap(foo)) is foo)
    instance = Fresh(1)
    method = types.MethodType(foo, instance)
    show("method wrapper", registry.wrap(method) == FooMethod(instance))
    unwrapped = registry.unwrap(registry.wrap(method))
    show("method back", (unwrapped.__self__ is instance, unwrapped.__func__ is foo))
''')

case("field_values_and_resource_dicts", '''
    import dataclasses
    from typing import Any
    import enact
    from enact import resource_registry, serialization, utils

    class Custom:
        def __init__(self, x):
            self.x = x

    @enact.register
    @dataclasses.dataclass
    class CustomWrapper(enact.TypeWrapper[Custom]):
        x: int
        @classmethod
        def wrap(cls, value):
            return cls(value.x)
        def unwrap(self):
            return Custom(self.x)
        @classmethod
        def wrapped_type(cls):
            return Custom

    @enact.register
    @dataclasses.dataclass
    class Holder(enact.Resource):
        w: Any
        i: int

    holder = Holder(Custom(1), 2)
    as_dict = holder.to_resource_dict()
    show("dict type", type(as_dict).__name__)
    show("type info", as_dict.type_info == Holder.type_key())
    show("w", (type(as_dict["w"]).__name__, as_dict["w"].type_info == CustomWrapper.type_key()))
    rebuilt = resource_registry.from_resource_dict(as_dict)
    show("rebuilt", (rebuilt.w.x, rebuilt.i))
    show("same digest", enact.digests.digest(holder) == enact.digests.digest(as_dict))
    data = serialization.JsonSerializer().serialize(Holder(1, 2).to_resource_dict())
    show("json round trip", resource_registry.from_resource_dict(
        serialization.JsonSerializer().deserialize(data)) == Holder(1, 2))
    walked = list(utils.walk_resource(Holder([Holder(1, 2)], 3)))
    show("walk", [type(r).__name__ for r in walked])
    show("walk dicts", [d.type_info.name.rsplit(".", 1)[-1] for d in
                        utils.walk_resource_dict(Holder([Holder(1, 2)], 3).to_resource_dict())])
''')

case("refs_and_packing", '''
    import dataclasses
    import enact
    from enact import references, resource_registry

    @enact.register
    @dataclasses.dataclass
    class Simple(enact.Resource):
        x: object
        y: float

    resource = Simple(1, 2.0)
    ref, packed = enact.Ref.pack(resource)
    show("packed ref", ref == packed.ref())
    packed.ref().verify(packed.data)
    show("unpacked", packed.ref().unpack(packed) == resource)
    show("packed type", type(packed).__name__)
    show("same for equal", enact.Ref.pack(Simple(1, 2.0)) == enact.Ref.pack(Simple(1, 2.0)))
    show("differs", enact.Ref.pack(Simple(1, 2.0))[0] == enact.Ref.pack(Simple(1, 3.0))[0])
    raises("not a str", lambda: enact.Ref(1234), AssertionError)
    fake = enact.Ref("fake_digest")
    show("id round trip", fake.from_id(fake.id) == fake)
    one, packed_one = enact.Ref.pack(resource_registry.wrap(1))
    show("wrapped int", type(resource_registry.from_resource_dict(packed_one.data)).__name__)
    show("unpack int", packed_one.ref().unpack(packed_one))
    with enact.InMemoryStore() as store:
        x = enact.commit(1)
        y = enact.commit(2.0)
        _, packed = enact.Ref.pack(Simple(x, [{"t": (y, y)}]))
        show("links", packed.links == {x.id, y.id})
        none_ref = store.commit(None)
        _, packed_none = none_ref.pack(resource_registry.wrap(None))
        none_ref.verify(packed_none.data)
        show("none verifies", True)
        show("modify", None)
        ref = store.commit(Simple(1, 2.0))
        with ref.modify() as value:
            value.x = 10
        show("modified", ref.checkout().x)
        show("is cached", store.commit(None).is_cached())
''')

case("custom_ref_type_store", '''
    import dataclasses
    import enact
    from enact import interfaces, references, resource_registry, serialization

    @enact.register
    @dataclasses.dataclass
    class Simple(enact.Resource):
        x: int
        y: float

    @enact.register
    @dataclasses.dataclass
    class JsonPacked(enact.Resource):
        contents: bytes

    @enact.register
    class JsonPackedRef(enact.Ref):
        @classmethod
        def verify(cls, packed_resource):
            pass

        @classmethod
        def unpack(cls, packed_resource):
            data = packed_resource.data
            if data.type_info != JsonPacked.type_key():
                raise enact.RefError("not JSON packed")
            packed = resource_registry.from_resource_dict(data)
            return resource_registry.from_resource_dict(
                serialization.JsonSerializer().deserialize(packed.contents))

        @classmethod
        def pack(cls, resource):
            ref = cls.from_resource(resource)
            return ref, references.PackedResource(
                JsonPacked(serialization.JsonSerializer().serialize(
                    resource.to_resource_dict())).to_resource_dict(),
                ref_dict=ref.to_resource_dict(), links=set(), type_keys=set())

    ref, packed = JsonPackedRef.pack(Simple(1, 2.0))
    show("packed ref", ref == packed.ref())
    show("unpacked", packed.ref().unpack(packed) == Simple(1, 2.0))
    store = enact.Store(ref_type=JsonPackedRef)
    ref = store.commit(Simple(1, 2.0))
    show("ref type", type(ref).__name__)
    show("has", store.has(ref))
    show("checkout", store.checkout(ref) == Simple(1, 2.0))
    show("fresh copy", store.checkout(ref) is not store.checkout(ref))
''')

case("store_queries", '''
    import dataclasses
    import enact
    from enact import references, resource_registry, type_wrappers, types, version

    @enact.register
    @dataclasses.dataclass
    class Simple(enact.Resource):
        x: object
        y: object

    backend = enact.InMemoryBackend()
    with enact.Store(backend) as store:
        r1 = enact.commit(Simple(1, Simple(2, Simple(0, {1, 2}))))
        r2 = enact.commit([(1, 2)])
        fake = enact.Ref.from_id('{"digest": "fake_id"}')
        t1, t2, t3 = backend.get_type_keys((r1.id, r2.id, fake.id))
        show("t1", t1 == {enact.Ref.type_key(), Simple.type_key(), type_wrappers.SetWrapper.type_key()})
        show("t2", t2 == {enact.Ref.type_key(), resource_registry.ListWrapper.type_key(),
                          type_wrappers.TupleWrapper.type_key()})
        show("t3", t3)
        a = enact.commit(5)
        b = enact.commit([a])
        c = enact.commit([a, b])
        graph = store.get_dependency_graph((a, b, c, fake))
        names = {a: "a", b: "b", c: "c", fake: "fake"}
        show("graph", sorted((names[k], None if v is None else sorted(names[x] for x in v))
                             for k, v in graph.items()))
        chain = [enact.commit(0)]
        for _ in range(6):
            chain.append(enact.commit(chain[-1]))
        show("depth", len(backend.get_dependency_graph((chain[-1].id,), max_depth=3)))
        s = enact.commit({b, enact.commit(Simple(1, 2.0))})
        show("requirements", store.get_transitive_type_requirements(s) == {
            enact.Ref.type_key(), resource_registry.IntWrapper.type_key(),
            resource_registry.ListWrapper.type_key(), Simple.type_key(),
            type_wrappers.SetWrapper.type_key()})
        raises("no distribution", lambda: store.get_distribution_requirements(s),
               references.DistributionKeyError)
        show("distributions", store.get_distribution_requirements(s, expect_distribution_key=False)
             == {types.DistributionKey(version.DIST_NAME, version.__version__)})
        missing = enact.commit([enact.Ref("ab" * 32)])
        raises("dangling", lambda: store.get_transitive_type_requirements(missing),
               references.NotFound)
        show("stored types", backend.get_type(Simple.type_key()))
''')

case("exceptions_replay_and_overrides", '''
    import dataclasses
    from typing import Optional
    import enact
    from enact import invocations

    @enact.register
    class Failed(invocations.ExceptionResource):
        pass

    @enact.typed_invokable(int, int)
    @dataclasses.dataclass
    class AddOne(enact.Invokable):
        def call(self, value: int) -> int:
            return value + 1

    @enact.register
    @dataclasses.dataclass
    class Fail(enact.Invokable):
        def call(self, value):
            raise Failed("fail")

    @enact.typed_invokable(int, int)
    @dataclasses.dataclass
    class Nested(enact.Invokable):
        fail_on: Optional[int] = None

        def call(self, value: int) -> int:
            for i in range(10):
                value = Fail()(value) if i == self.fail_on else AddOne()(value)
            return value

    with enact.InMemoryStore():
        fun = Nested(fail_on=3)
        invocation = fun.invoke(enact.commit(0))
        show("raised", type(invocation.get_raised()).__name__)
        show("children", len(list(invocation.get_children())))
        with enact.ReplayContext(subinvocations=[enact.commit(invocation)],
                                 exception_override=lambda ref: enact.commit(100)):
            show("overridden", fun(0))
        replayed = fun.invoke(enact.commit(0), replay_from=invocation,
                              exception_override=lambda ref: enact.commit(100))
        show("replayed", replayed.get_output())
        with enact.ReplayContext(subinvocations=[enact.commit(invocation)], strict=False):
            raises("non-strict mismatch", lambda: fun(1), Failed)
        with enact.ReplayContext(subinvocations=[enact.commit(invocation)], strict=True):
            raises("strict mismatch", lambda: fun(1), enact.ReplayError)
        with invocation.response.modify() as response:
            del response.children[4:]
            with response.children[-1].modify() as child:
                with child.response.modify() as child_response:
                    child_response.raised = None
                    child_response.output = enact.commit(100)
        with enact.ReplayContext(subinvocations=[enact.commit(invocation)]):
            show("edited record", fun(0))
        plain = Nested().invoke(enact.commit(0))
        show("replay equal", plain.replay() == plain)
        show("rewind", len(list(plain.rewind(2).get_children())))
        raises("wrapped native", lambda: enact.invoke(int, ("x",)), ValueError)
''')

case("retry_counts", '''
    import enact

    calls = {"leaf": 0}

    @enact.register
    def leaf(x: int) -> int:
        calls["leaf"] += 1
        if x == 2:
            raise ValueError("two")
        return x

    @enact.register
    def parent() -> int:
        total = 0
        for x in (1, 2):
            try:
                total += leaf(x)
            except ValueError:
                total += 10
        return total

    @enact.register
    def failing() -> int:
        return leaf(1) + leaf(2)

    with enact.InMemoryStore():
        invocation = enact.invoke(failing, wrap_exceptions=True)
        show("first run", calls["leaf"])
        raises("replay", lambda: invocation.replay(), ValueError)
        show("after replay", calls["leaf"])
        ok = enact.invoke(parent)
        show("parent", ok.get_output())
        show("parent replay", (ok.replay().get_output(), calls["leaf"]))
''')

case("input_requests", '''
    import dataclasses
    import enact

    @enact.typed_invokable(int, int)
    @dataclasses.dataclass
    class Nested(enact.Invokable):
        fun: enact.InvokableBase
        iterations: int = 2

        def call(self, value):
            for _ in range(self.iterations):
                value = self.fun(value)
            return value

    @enact.register
    class Adds(enact.Invokable):
        def call(self, value: int):
            return enact.request_input(int) + value

    with enact.InMemoryStore():
        invocation = Nested(enact.RequestInput(str)).invoke(enact.commit("foo"))
        for answer in ("bar", "bish"):
            request = invocation.get_raised()
            show("for value", request.for_value.checkout())
            show("requested", request.requested_type)
            invocation = request.continue_invocation(invocation, answer)
        show("output", invocation.get_output())
        show("children", [c.get_output() for c in invocation.get_children()])
        invocation = Adds().invoke(enact.commit(3))
        show("added", invocation.get_raised().continue_invocation(invocation, 5).get_output())
        request = enact.RequestInput(str, "Context").invoke(enact.commit("x")).get_raised()
        show("context", (request.context, request.requested_type, request.for_value()))
    raises("outside", lambda: enact.RequestInput(str)("foo"), enact.InputRequestOutsideInvocation)
''')

# Cause 4: printing --------------------------------------------------------------------

case("pformat", '''
    import dataclasses
    import enact

    @enact.register
    @dataclasses.dataclass
    class Pair(enact.Resource):
        a: object
        b: object

    for value in (None, True, False, 42, 3.14, b"hello", "hello", [1, 2, 3], {"a": 1, "b": 2},
                  (1, 2, 3), [], {}, Pair(1, "x"), Pair([1], {"k": Pair(2, 3)}), [Pair(1, 2)],
                  Pair, {1, 2}, [[1], [2, 3]]):
        print(enact.pformat(value))
        print("--")
    printer = enact.PPrinter(offset=4)
    print(printer.pformat({"a": [1, 2]}))
    with enact.InMemoryStore():
        ref = enact.commit(Pair(1, 2))
        print(enact.pformat(Pair(ref, [ref])))
        print(enact.pformat(Pair(ref, [ref]), max_ref_depth=0))
        print(enact.pformat([ref, ref], skip_repeated_refs=True))
''')

case("invocation_summary", '''
    import dataclasses
    import enact

    @enact.register
    @dataclasses.dataclass
    class Greet(enact.Invokable):
        greeting: str = "hi"

        def call(self, name: str) -> str:
            return f"{self.greeting} {name}"

    @enact.register
    def greet_all(names: list, punctuation: str = "!") -> str:
        return " ".join(Greet()(n) for n in names) + punctuation

    with enact.InMemoryStore():
        invocation = enact.invoke(greet_all, (["ann", "bob"],), {"punctuation": "?"})
        print(enact.invocation_summary(invocation))
        print(enact.invocation_summary(invocation, show_input=False, show_output=False))
        print(enact.invocation_summary(invocation.rewind(1), indent=1))
''')

# Cause 5: the invocation generator is a generator -------------------------------------

case("invocation_generator", '''
    import dataclasses
    import enact

    @enact.typed_invokable(int, str)
    @dataclasses.dataclass
    class IntToStr(enact.Invokable):
        def call(self, value: int) -> str:
            return str(value)

    @enact.typed_invokable(type(None), int)
    class SumRequests(enact.Invokable):
        def call(self):
            return enact.request_input(int) + enact.request_input(int) + enact.request_input(int)

    @enact.register
    def plus_one() -> int:
        return enact.request_input(int) + 1

    @enact.register
    def two() -> int:
        return plus_one() + plus_one()

    with enact.InMemoryStore():
        generator = enact.InvocationGenerator(IntToStr(), enact.commit(3))
        raises("send before next", lambda: generator.send(3), TypeError)
        generator = enact.InvocationGenerator(IntToStr(), enact.commit(3))
        raises("send None first", lambda: generator.send(None), StopIteration)
        generator = enact.InvocationGenerator(SumRequests(), enact.commit(None))
        request = next(generator)
        answers = iter(range(1, 10))
        try:
            while True:
                show("complete", generator.complete)
                request = generator.send(next(answers))
        except StopIteration:
            pass
        show("sent", generator.invocation.get_output())
        generator = enact.InvocationGenerator(SumRequests(), enact.commit(None))
        for i, _ in enumerate(generator):
            generator.set_input(i * 10)
        show("set_input", generator.invocation.get_output())
        generator = enact.InvocationGenerator.from_callable(two)
        for i, _ in enumerate(generator):
            generator.set_input(i)
        show("functions", (generator.invocation.get_output(),
                           [c.get_output() for c in generator.invocation.get_children()]))
''')

# More of the 0.4 API -------------------------------------------------------------------

case("functions_and_methods", '''
    import asyncio
    import dataclasses
    import enact

    @enact.register
    def python_to_python(i: int) -> str:
        return str(i)

    @enact.register
    async def async_python_to_python(i: int) -> str:
        return str(i)

    @enact.register
    @dataclasses.dataclass
    class Counter(enact.Resource):
        calls: int = 0

        @enact.register
        def foo(self, x: int):
            self.calls += 1
            return str(x)

        @enact.register
        def bar(self) -> int:
            self.foo(2)
            return self.calls

        @enact.register
        def value(self) -> int:
            return self.calls

    @enact.register
    def twice(fun):
        return fun() + fun()

    with enact.InMemoryStore():
        invocation = enact.invoke(python_to_python, (3,))
        show("output", invocation.get_output())
        show("invokable", invocation.request().invokable() is python_to_python)
        show("async", asyncio.run(enact.invoke_async(async_python_to_python, (4,))).get_output())
        counter = Counter()
        invocation = enact.invoke(counter.bar)
        show("method", (invocation.get_output(), counter.calls))
        replayed = invocation.rewind().replay()
        show("method replay", (replayed.get_output(), replayed.request().invokable().__self__.calls))
        show("bound argument", enact.invoke(twice, (Counter(5).value,)).get_output())
        argument = enact.invoke(twice, (Counter(5).value,)).request().input().args[0]
        show("argument", (argument.__self__, argument.__func__ == Counter.value))
        method_ref = enact.commit(Counter(7).bar)
        show("method ref", (method_ref().__self__.calls, method_ref()()))
        def local():
            def unregistered(i):
                return python_to_python(i)
            return unregistered
        invocation = enact.invoke(local(), (3,))
        show("unregistered", [c.get_output() for c in invocation.get_children()])
        from enact import invocations
        raises("replay unregistered", lambda: invocation.rewind().replay(), invocations.InvocationError)
''')

case("contexts", '''
    import asyncio
    import threading
    from enact import contexts

    @contexts.register
    class Depth(contexts.Context):
        def __init__(self):
            super().__init__()
            self.depth = None

        def enter(self):
            current = Depth.get_current()
            self.depth = 1 if current is None else current.depth + 1

    @contexts.register_to_superclass(Depth)
    class Derived(Depth):
        pass

    @contexts.register
    class Strict(contexts.Context):
        @classmethod
        def permissive_initialization(cls):
            return False

    @contexts.register
    class AsyncDepth(contexts.AsyncContext):
        pass

    show("none", Depth.get_current())
    with Depth() as outer:
        with Depth() as inner:
            show("depths", (outer.depth, inner.depth, Depth.current() is inner))
        with Depth.top_level():
            show("top level", Depth.get_current())
        result = []
        t = threading.Thread(target=contexts.with_current_contexts(lambda: result.append(Depth.get_current() is outer)))
        t.start(); t.join()
        t = threading.Thread(target=contexts.with_new_contexts(lambda: result.append(Depth.get_current())))
        t.start(); t.join()
        show("threads", result)
    with Derived() as derived:
        show("derived", Depth.get_current() is derived)
    class Unregistered(contexts.Context):
        pass
    raises("unregistered", lambda: Unregistered.get_current(), contexts.ContextError)
    raises("no current", lambda: Depth.current(), contexts.NoActiveContext)
    raises("twice", lambda: contexts.register(Depth), AssertionError)
    errors = []
    def strict():
        try:
            with Strict():
                pass
        except contexts.ContextError:
            errors.append("refused")
    t = threading.Thread(target=strict)
    t.start(); t.join()
    show("strict thread", errors)
    async def nested():
        async with AsyncDepth() as a:
            return AsyncDepth.get_current() is a
    show("async", asyncio.run(nested()))
''')

case("types_and_inference", '''
    import typing
    import dataclasses
    import enact
    from enact import type_inference, types, resource_registry, type_wrappers

    descriptors = [types.Int(), types.List(types.List(types.Int())), types.Dict(types.Str()),
                   types.Union((types.Int(), types.NoneType())),
                   types.ResourceType(type_wrappers.SetWrapper.type_key())]
    for d in descriptors:
        show("json", (d.to_json() if not isinstance(d, types.ResourceType) else "resource",
                      types.TypeDescriptor.from_json(d.to_json()) == d))
    show("pformat", [d.pformat() for d in descriptors[:4]])
    for annotation in (int, typing.List[typing.List[int]], typing.Dict[str, int],
                       typing.Optional[int], typing.Dict[int, int], typing.Union, list):
        show(str(annotation), type_inference.from_annotation(annotation))
    raises("strict", lambda: type_inference.from_annotation(typing.Dict[int, int], strict=True),
           type_inference.TypeInferenceFailed)
    show("to python", [resource_registry.to_python_type(t) for t in (types.Int(), types.List())])
    show("from python", resource_registry.from_python_type(bytes))

    @enact.register
    @dataclasses.dataclass
    class Typed(enact.Resource):
        a: int
        b: typing.List[str]
        c: "Typed"
        d: typing.Any

    show("fields", [d.pformat() if d else None for d in Typed.field_descriptors()][:2])
    with enact.InMemoryStore() as store:
        show("descriptor value", store.commit(types.List(types.Int())).checkout())
''')

case("distributions_and_utils", '''
    import dataclasses
    import enact
    from enact import distribution_registry, utils

    registry = distribution_registry.DistributionRegistry()
    registry.register_distribution("foo", "1.0", "/path/to/foo")
    show("by path", registry.get_path_distribution_key("/path/to/foo/my.py"))
    show("elsewhere", registry.get_path_distribution_key("/path/to/bar.py"))
    show("key", enact.DistributionKey("foo", "1.0") == ("foo", "1.0"))

    calls = []

    @enact.register
    @dataclasses.dataclass
    class Cached(enact.Resource):
        x: int

        @utils.cached_property
        def double(self):
            calls.append(self.x)
            return self.x * 2

    c = Cached(1)
    show("cached", (c.double, c.double, calls))
    c.x = 2
    show("recomputed", (c.double, calls))
''')

# Differences on purpose (listed in the README) ---------------------------------------

case("difference_true_and_one", '''
    import dataclasses
    import enact

    @enact.register
    @dataclasses.dataclass
    class Flag(enact.Resource):
        value: object

    digest = enact.resource_digest
    show("[True] and [1] share a digest", digest([True]) == digest([1]))
    show("fields True and 1 share a digest", digest(Flag(True)) == digest(Flag(1)))
    show("1 and 1.0 share a digest", digest(Flag(1)) == digest(Flag(1.0)))
    with enact.InMemoryStore() as store:
        one = store.commit(Flag(1))
        show("True comes back as True", store.commit(Flag(True)).checkout().value is True)
''')

case("difference_identical_requests", '''
    import asyncio
    import dataclasses
    import enact

    @enact.register
    @dataclasses.dataclass
    class Ask(enact.AsyncInvokable):
        async def call(self):
            return enact.request_input(int)

    @enact.typed_invokable(type(None), list)
    @dataclasses.dataclass
    class Gather(enact.AsyncInvokable):
        count: int

        async def call(self):
            return list(await asyncio.gather(*[Ask()() for _ in range(self.count)]))

    with enact.InMemoryStore():
        invocation = asyncio.run(Gather(3).invoke(enact.commit(None)))
        request = invocation.get_raised()
        invocation = asyncio.run(request.continue_invocation_async(invocation, 2))
        show("one answer answers all", invocation.successful())
''')

case("difference_function_names", '''
    import enact

    @enact.register
    def double(x: int) -> int:
        return 2 * x

    with enact.InMemoryStore():
        line = enact.invocation_summary(enact.invoke(double, (2,)))
        show("summary names the function", line == "->double(2) = 4")
''')

case("difference_refs_remember_their_store", '''
    import dataclasses
    import enact

    @enact.register
    @dataclasses.dataclass
    class Simple(enact.Resource):
        x: int

    store = enact.InMemoryStore()
    ref = store.commit(Simple(1))
    ref.checkout().x = 10
    raises("checkout after editing a checkout, no store", lambda: ref.checkout())
    show("checkouts are copies", ref.checkout() is not ref.checkout())
''')

case("difference_exception_summaries", '''
    import enact

    @enact.register
    class Refused(enact.ExceptionResource):
        pass

    @enact.register
    def refuse() -> int:
        raise Refused("no")

    with enact.InMemoryStore():
        print(enact.invocation_summary(enact.invoke(refuse)))
''')

case("difference_rewind_after_the_block", '''
    import random
    import enact

    @enact.register
    def roll_die(sides: int) -> int:
        return random.randint(1, sides)

    @enact.register
    def roll_sum(num_rolls: int) -> int:
        return sum(roll_die(6) for _ in range(num_rolls))

    with enact.InMemoryStore() as store:
        invocation = enact.invoke(roll_sum, (2,))
        ref = store.commit([1, 2])

    def rewind_and_replay():
        replayed = invocation.rewind(1).replay()
        assert replayed.get_child(0) == invocation.get_child(0)
        assert len(list(replayed.get_children())) == 2

    raises("rewind and replay after the block", rewind_and_replay)
    raises("checkout after the block", lambda: ref.checkout())
''')

case("difference_refs_hold_digests", '''
    import dataclasses
    import enact

    @enact.register
    @dataclasses.dataclass
    class Holder(enact.Resource):
        ref: object

    raises("digest of a value holding a made-up ref",
           lambda: enact.resource_digest(Holder(enact.Ref("1234"))))
    with enact.InMemoryStore():
        raises("commit of a made-up ref", lambda: enact.commit(enact.Ref("fake_id")))
''')

case("difference_modules_must_be_registered", '''
    import json
    import enact

    with enact.InMemoryStore() as store:
        ref = store.commit({"module": json})
        raises("checkout of an unregistered module", lambda: ref.checkout())
''')

case("difference_default_store", '''
    import enact

    show("Store() keeps objects in memory", type(enact.Store()._backend).__name__ == "InMemoryBackend")
''')

DIFFERENCES = {
    "difference_true_and_one": "True and 1 have different digests (API.md section 2).",
    "difference_identical_requests": "Each input request gets its own answer (API.md section 4).",
    "difference_function_names": "Summaries name functions cleanly (API.md section 5).",
    "difference_refs_remember_their_store": (
        "Refs remember their store and checkouts are copies (API.md section 2, issue 12)."
    ),
    "difference_exception_summaries": (
        "Summaries print every exception as Type: message (API.md section 5)."
    ),
    "difference_rewind_after_the_block": (
        "Invocations and refs keep working after their store's block (API.md section 2)."
    ),
    "difference_refs_hold_digests": (
        "A stored or digested ref must hold a SHA-256 digest (API.md section 2: nested refs "
        "are digests)."
    ),
    "difference_modules_must_be_registered": (
        "Stored data loads only registered functions, types and modules (issue 9; API.md "
        "section 2: decoding never executes code)."
    ),
    "difference_default_store": (
        "Store() opens ENACT_STORE_URL or ./.enact (the configuration rule of STYLE.md)."
    ),
}

SOURCES = dict(_SOURCES)
