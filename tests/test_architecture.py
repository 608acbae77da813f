"""Architecture: the layer map of docs/architecture.md holds in the imports of every module.

Each test parses the source (no imports run): `import` statements anywhere in a module
count, at the top or inside a function; only those under `if TYPE_CHECKING:` do not, since
they never run.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "seoulchain"

# docs/architecture.md, top to bottom: a module may import its own layer and those below.
LAYER_RANKS = {
    "cli": 7, "api": 7, "__main__": 7,
    "client": 6, "bench": 6, "vectors": 6,
    "node": 5,
    "light": 4,
    "consensus": 3, "execution": 3, "services": 3,
    "ledger": 2, "vault": 2,
    "proofs": 1, "credentials": 1, "voting": 1,
    "codec": 0, "crypto": 0,
    "errors": -1, "__init__": -1,
}
# The simulator drives the pure cores and the validator core the node runs (sans I/O).
SIM_IMPORTABLE = {"consensus", "execution", "services", "ledger", "proofs", "codec", "crypto",
                  "errors", "sim"}
SIM_IMPORTABLE_MODULES = {"seoulchain.node.validator", "seoulchain.node.mempool"}
# Imports against the map that are being removed; each entry says where the code goes.
LAYER_EXCEPTIONS: dict[tuple[str, str], str] = {}
# SQL lives in ledger/ and vault/ (the off-chain personal data store). bench/postgres.py is
# the PostgreSQL baseline the ledger is measured against, not the ledger.
SQL_LAYERS = {"ledger", "vault"}
SQL_EXCEPTIONS = {"seoulchain.bench.postgres"}
SQL_METHODS = {"execute", "executemany", "executescript"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def load_modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), str(path))
            for path in sorted(PACKAGE_DIR.rglob("*.py"))}


MODULES = load_modules()


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def iter_runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Yield every node below `node` except those inside `if TYPE_CHECKING:` blocks."""
    for child in ast.iter_child_nodes(node):
        runs = child.orelse if isinstance(child, ast.If) and is_type_checking_block(child) \
            else [child]
        for statement in runs:
            yield statement
            yield from iter_runtime_nodes(statement)


def resolve(name: str) -> str | None:
    """Return the seoulchain module `name` refers to (a module, or a name in one)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def get_imports(module: str) -> set[str]:
    """Return the seoulchain modules `module` imports at run time."""
    found: set[str | None] = set()
    for node in iter_runtime_nodes(MODULES[module]):
        if isinstance(node, ast.Import):
            found.update(resolve(alias.name) for alias in node.names
                         if alias.name.startswith("seoulchain"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.startswith("seoulchain"):
            found.update(resolve(f"{node.module}.{alias.name}") for alias in node.names)
    found.discard(None)
    found.discard(module)
    return found  # type: ignore[return-value]


IMPORTS = {module: get_imports(module) for module in MODULES}


def get_layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def find_layer_violations() -> list[str]:
    violations = []
    for module, imported in sorted(IMPORTS.items()):
        for target in sorted(imported):
            if (module, target) in LAYER_EXCEPTIONS or is_allowed(module, target):
                continue
            violations.append(f"{module} imports {target}")
    return violations


def is_allowed(module: str, target: str) -> bool:
    layer, target_layer = get_layer(module), get_layer(target)
    if layer == target_layer:
        return True
    if layer == "sim":
        return target_layer in SIM_IMPORTABLE or target in SIM_IMPORTABLE_MODULES
    if target_layer == "sim":
        return layer in ("cli", "__main__")
    return LAYER_RANKS[target_layer] <= LAYER_RANKS[layer]


def find_cycles() -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(IMPORTS[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(MODULES)))
    try:
        for module in sorted(MODULES):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return cycles


def test_layers_nothing_imports_upward() -> None:
    assert find_layer_violations() == []


def test_layers_exceptions_are_still_needed() -> None:
    """An exception whose import is gone is dropped from the list, so the map tightens."""
    assert [pair for pair in sorted(LAYER_EXCEPTIONS)
            if pair[1] not in IMPORTS.get(pair[0], set())] == []


def test_imports_no_module_cycles() -> None:
    assert find_cycles() == []


def test_imports_cycle_finder_sees_function_level_imports() -> None:
    """A cycle closed by an import inside a function is still a cycle."""
    source = {"seoulchain.a": "import seoulchain.b\n",
              "seoulchain.b": "def f():\n    from seoulchain.a import x\n"}
    saved = dict(MODULES), dict(IMPORTS)
    try:
        for name, text in source.items():
            MODULES[name] = ast.parse(text)
        for name in source:
            IMPORTS[name] = get_imports(name)
        assert ["seoulchain.a", "seoulchain.b"] in find_cycles()
    finally:
        MODULES.clear(), MODULES.update(saved[0])
        IMPORTS.clear(), IMPORTS.update(saved[1])


@pytest.mark.parametrize("module", sorted(name for name in MODULES
                                          if get_layer(name) == "api"))
def test_api_reads_only_through_node_methods(module: str) -> None:
    """The API never reaches into a node's store or engine: `Node` methods are its reads."""
    reached = [f"line {node.lineno}: .{node.attr}" for node in ast.walk(MODULES[module])
               if isinstance(node, ast.Attribute) and node.attr in ("store", "engine")]
    assert reached == []


def is_sql(node: ast.AST) -> bool:
    """True for a statement run on a database, a connection opened, or a store's `db`."""
    if isinstance(node, ast.Attribute):
        return node.attr == "db" or ast.unparse(node) == "sqlite3.connect"
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS and bool(node.args)
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr))


def test_sql_only_in_ledger_and_vault() -> None:
    """No module outside ledger/ and vault/ runs SQL or opens a database connection."""
    found = []
    for module, tree in sorted(MODULES.items()):
        if get_layer(module) in SQL_LAYERS or module in SQL_EXCEPTIONS:
            continue
        for node in iter_runtime_nodes(tree):
            if is_sql(node):
                found.append(f"{module} line {node.lineno}: {ast.unparse(node)[:60]}")
    assert found == []


# Limits that share a name but bound different things, each defined where it applies.
LIMIT_NAMES_SHARED = {
    # A simulated link's delay (sim/network.py) and the benchmark proxy's injected delay.
    "DELAY_MS_MAX",
}


def test_limits_each_defined_once() -> None:
    """A limit has one definition; every other module imports it."""
    defined: dict[str, list[str]] = {}
    for module, tree in MODULES.items():
        for statement in tree.body:
            targets = statement.targets if isinstance(statement, ast.Assign) else \
                [statement.target] if isinstance(statement, ast.AnnAssign) else []
            for target in targets:
                if isinstance(target, ast.Name) and target.id.endswith("_MAX"):
                    defined.setdefault(target.id, []).append(module)
    assert {name: modules for name, modules in defined.items()
            if len(modules) > 1 and name not in LIMIT_NAMES_SHARED} == {}
