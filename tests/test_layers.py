"""The package's layers import one way only, and no two modules import each other, even lazily.

Every module under ``src/feraug`` belongs to a layer; a module may import its own layer and the
layers below it, never one above. The order, lowest first, is :data:`LAYERS`. Imports inside
functions count: a lazy import is how a circle between two modules usually hides (it works until
someone moves it to the top of the file). A test failure names the importing module, its line and
what it imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Lowest first. ``feraug`` itself (the package, its version) is below all of them.
LAYERS: tuple[str, ...] = (
    "core",  # seeding, checkpoint files: what every layer needs and that needs no other layer
    "data",  # faces: loading, splits, toy faces, augmentation, degradations
    "figures",  # image grids and plots of anything below
    "nets",  # networks
    "gan",  # GAN losses and regularizers
    "config",  # validated run configurations
    "models",  # what one training step of a GAN family computes
    "train",  # the one engine for everything trained
    "synth",  # synthetic faces from trained generators
    "evaluate",  # the instrument and the experiment
    "report",  # results in words and documents
    "pipelines",  # whole runs that chain the layers (and feraug.api, feraug.demo)
    "cli",  # the feraug command
)

#: Modules directly under ``feraug`` that are no package of their own: the layer each belongs to.
TOP_MODULES = {"api": "pipelines", "demo": "pipelines", "__main__": "cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "feraug").rglob("*.py"))}


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` (``-1`` for the ``feraug`` package itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    name = TOP_MODULES.get(parts[1], parts[1])
    if name not in LAYERS:
        raise AssertionError(f"{module} belongs to no layer: add {name!r} to LAYERS (or TOP_MODULES) in {__file__}")
    return LAYERS.index(name)


def _known(name: str) -> str | None:
    """The module an import of ``name`` loads: ``name`` itself, or the package or module that defines it."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> dict[str, int]:
    """feraug modules that ``module`` imports anywhere in its source (functions included) -> first line."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{alias.name}" for alias in node.names]  # a submodule, or a name defined in base
        else:
            continue
        for name in names:
            target = _known(name) if name.split(".")[0] == "feraug" else None
            if target is not None and target != module:
                found.setdefault(target, node.lineno)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [f"{module} (line {line}) imports {target}: layer {LAYERS[layer_of(target)]!r} is above "
              f"{LAYERS[layer_of(module)]!r}"
              for module, targets in sorted(GRAPH.items()) for target, line in sorted(targets.items())
              if layer_of(target) > layer_of(module)]  # fmt: skip
    assert not upward, "\n".join(upward)


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a set of modules importing in a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    described = []
    for component in _cycles(GRAPH):
        edges = [f"  {a} (line {GRAPH[a][b]}) imports {b}"
                 for a in component for b in sorted(GRAPH[a]) if b in component]  # fmt: skip
        described.append("modules importing each other in a circle:\n" + "\n".join(edges))
    assert not described, "\n".join(described)


def test_the_checks_catch_an_upward_import_and_a_cycle() -> None:
    graph = {"feraug.data.a": {"feraug.train.b": 1}, "feraug.train.b": {"feraug.data.a": 3}}
    assert layer_of("feraug.train.b") > layer_of("feraug.data.a")
    assert _cycles(graph) == [["feraug.data.a", "feraug.train.b"]]
    assert _cycles({"feraug.data.a": {"feraug.data.b": 1}, "feraug.data.b": {}}) == []
