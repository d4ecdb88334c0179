"""Dependencies point one way (docs/engine.md, "Layers"), checked over every import.

Every ``import`` statement of every module under ``enact/`` is read with ``ast``:
top-level ones, those inside functions, and those under ``if TYPE_CHECKING:``.

* Core modules (``enact/*.py`` but ``__init__.py``, the public door,
  ``references.py``, enact 0.4's door to refs and backends, and ``cli.py``, the
  command, which sit on top of everything) never import ``enact.stores`` or
  ``enact.worker``.
* Stores import only ``enact.backend``, ``enact.errors`` and each other.
* Core modules import only modules below them in ``CORE_LAYERS``; together with the
  rules above, the runtime imports of the whole package form no cycle (also checked
  directly).
* A function-local import loads an optional dependency, nothing else.
* No module imports, or reaches into, another module's leading-underscore name.
* ``import enact`` loads no server client library.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ENACT = Path(__file__).resolve().parents[2] / "enact"
FORBIDDEN = ("celery", "boto3", "botocore", "redis", "kombu")

# The core, bottom to top: a core module imports only modules listed before it.
CORE_LAYERS = [
    "enact.errors",
    "enact.types",  # type keys and descriptors (enact 0.4's enact.types)
    "enact.version",
    "enact.progress",  # the terminal progress line (imports nothing from enact)
    "enact.digests",
    "enact.redaction",
    "enact.context",
    "enact.contexts",  # enact 0.4's context classes
    "enact.acyclic",
    "enact.distribution_registry",
    "enact.resources",
    "enact.registry",
    "enact.type_inference",
    "enact.refs",
    "enact.serialization",
    "enact.wrappers",
    "enact.field_values",  # 0.4's value model: ResourceDict, field values, wrap/unwrap
    "enact.inspection",  # links and type ids read without decoding; 0.4's store queries
    "enact.backend",
    "enact.config",
    "enact.store",
    "enact.records",
    "enact.tree",
    "enact.printing",
    "enact.typecheck",
    "enact.calls",
    "enact.invokables",
    "enact.trust",
    "enact.replay",
    "enact.requests",
    "enact.engine",
    # enact 0.4's module paths: thin modules over the core, nothing imports them
    "enact.utils",
    "enact.interfaces",
    "enact.function_wrappers",
    "enact.invocation_generators",
    "enact.invocations",
    "enact.pretty_print",
    "enact.registration",
    "enact.resource_digests",
    "enact.resource_registry",
    "enact.type_wrappers",
]
# Above the core, stores and worker: the public door (which also registers the
# backends), enact 0.4's ``enact.references`` (a second door: it re-exports the
# file and memory backends) and the command line (whose cluster commands load
# the worker lazily).
TOP = ("enact", "enact.references", "enact.cli")
# Optional dependencies (extras), and the enact modules that need them: the only
# things a function may import lazily.
OPTIONAL = (
    "celery", "kombu", "redis", "boto3", "botocore", "enact.worker",
    # the web extra (fastapi, uvicorn, jinja2): ``enact serve`` loads it lazily
    "enact.web",
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the enact module (or top-level package) imported
    names: tuple[str, ...]  # names taken from it (``from x import a, b``)
    kind: str  # "top", "local" (in a function) or "typing" (under TYPE_CHECKING)
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ENACT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ENACT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            child_kind = kind
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                child_kind = "local"
            elif isinstance(child, ast.If) and _is_type_checking(child) and kind == "top":
                child_kind = "typing"
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(module, alias.name, (), child_kind, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{module}:{child.lineno} uses a relative import"
                base = child.module or ""
                for alias in child.names:
                    # ``from enact import tree`` imports the module enact.tree.
                    sub = f"{base}.{alias.name}"
                    target = sub if sub in MODULES else base
                    found.append(Import(module, target, (alias.name,), child_kind, child.lineno))
            visit(child, child_kind)

    visit(ast.parse(path.read_text(), str(path)), "top")
    return found


ALL = [imp for module, path in MODULES.items() for imp in _imports(module, path)]
ENACT_IMPORTS = [i for i in ALL if i.target == "enact" or i.target.startswith("enact.")]


def _where(imp: Import) -> str:
    return f"{imp.module}:{imp.line} imports {imp.target} {imp.names or ''} ({imp.kind})"


def _is_core(module: str) -> bool:
    path = MODULES.get(module)
    return (
        path is not None and path.parent == ENACT and path.name != "__init__.py"
        and module not in TOP
    )


def test_every_core_module_has_its_place_in_the_layers() -> None:
    core = {m for m in MODULES if _is_core(m)}
    assert core == set(CORE_LAYERS), (
        "add the module to CORE_LAYERS (and to docs/engine.md) at its level: "
        f"{sorted(core ^ set(CORE_LAYERS))}"
    )


def test_core_never_imports_stores_or_worker() -> None:
    """Neither does ``enact.gc``, which works on any backend through the core's
    maintenance protocols (its roots from the cluster come in as arguments)."""
    bad = [
        _where(i)
        for i in ENACT_IMPORTS
        if (_is_core(i.module) or i.module.startswith("enact.gc"))
        and i.target.startswith(("enact.stores", "enact.worker"))
    ]
    assert bad == []


def test_stores_import_only_the_backend_interface_and_errors() -> None:
    allowed = ("enact.backend", "enact.errors")
    bad = [
        _where(i)
        for i in ENACT_IMPORTS
        if i.module.startswith("enact.stores")
        and i.target not in allowed
        and not i.target.startswith("enact.stores")
    ]
    assert bad == []


def test_core_imports_point_down_the_layers() -> None:
    level = {name: index for index, name in enumerate(CORE_LAYERS)}
    bad = [
        _where(i)
        for i in ENACT_IMPORTS
        if _is_core(i.module)
        and i.kind != "typing"
        and (i.target not in level or level[i.target] >= level[i.module])
    ]
    assert bad == [], "a core module imports its own level or above (a cycle in the making)"


def test_runtime_imports_form_no_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in ENACT_IMPORTS:
        if imp.kind != "typing" and imp.target in graph and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    # Importing a submodule runs its package first; a package importing its own
    # submodules is how packages work, not a cycle.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if module.startswith(target + ".") or target.startswith(module + "."):
                continue
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_function_local_imports_load_only_optional_dependencies() -> None:
    bad = [
        _where(i)
        for i in ALL
        if i.kind == "local" and not (i.target + ".").startswith(tuple(o + "." for o in OPTIONAL))
    ]
    assert bad == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _reaches_private(imp: Import) -> bool:
    """A private name taken from a module, or a private module outside its own package."""
    if any(_private(n) for n in imp.names if imp.target != f"{imp.target.rsplit('.', 1)[0]}.{n}"):
        return True
    parts = imp.target.split(".")
    for index, part in enumerate(parts):
        package = ".".join(parts[:index])
        if _private(part) and not imp.module.startswith(package + "."):
            return True
    return False


def test_no_module_imports_another_modules_private_names() -> None:
    assert [_where(i) for i in ENACT_IMPORTS if _reaches_private(i)] == []


def test_no_module_reaches_into_another_modules_private_names() -> None:
    bad = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}  # local name -> imported enact module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("enact"):
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("enact"):
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in MODULES:
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert bad == []


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def _forbidden(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)


def test_importing_enact_loads_no_client_libraries() -> None:
    modules = _modules_after("import enact")
    assert "enact" in modules
    assert _forbidden(modules) == []


def test_using_local_stores_loads_no_client_libraries() -> None:
    code = (
        "import enact, tempfile\n"
        "with enact.InMemoryStore():\n"
        "    enact.commit({'a': (1, 2)})()\n"
        "with enact.FileStore(tempfile.mkdtemp()):\n"
        "    enact.commit([1])()\n"
        "import enact.stores, enact.config\n"
        "enact.config.open_backend('memory://')"
    )
    assert _forbidden(_modules_after(code)) == []


def test_enact_import_does_not_read_the_environment_at_import_time() -> None:
    """A bad ENACT_STORE_URL only matters once a store is opened."""
    env_code = (
        "import os\nos.environ['ENACT_STORE_URL'] = 'bogus://'\nimport enact\n"
        "try:\n    enact.Store()\nexcept enact.ConfigError:\n    pass\n"
        "else:\n    raise SystemExit('no ConfigError')"
    )
    assert "enact" in _modules_after(env_code)


def test_the_rules_see_function_local_and_typing_imports() -> None:
    """The checker itself: it must not miss imports hidden in functions or typing blocks."""
    kinds = {(i.module, i.target): i.kind for i in ENACT_IMPORTS}
    assert kinds[("enact.context", "enact.store")] == "typing"
    assert kinds[("enact.cli", "enact.worker")] == "local"
    assert kinds[("enact.calls", "enact.tree")] == "top"
