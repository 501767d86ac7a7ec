"""Imports point down the layers, lazy imports included, and no two modules of one layer import each other in a
cycle. Each module's layer is the longest prefix of its name in ``LAYERS``; the failure names the import.

1. leaf modules that import nothing of the project; 2. data, callbacks, model, losses; 3. training core, weight
files, feature extraction; 4. probes (libraries); 5. commands (parse -> one library call -> print -> exit code).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ecg_dino", "datamodules", "callbacks")
LAYERS = {
    1: (
        "ecg_dino.version",
        "ecg_dino.leads",
        "ecg_dino.schedules",
        "ecg_dino.flops",
        "ecg_dino.files",
        "ecg_dino.distributed",
        "ecg_dino.signal",
        "ecg_dino.splits",
        "ecg_dino.hparams",
    ),
    2: ("datamodules", "callbacks", "ecg_dino.model", "ecg_dino.loss"),
    3: (
        "ecg_dino",  # the package root: the version and the Python API (``ECGEncoder``, imported on first use)
        "ecg_dino.module",
        "ecg_dino.masking",
        "ecg_dino.optim",
        "ecg_dino.parallel",
        "ecg_dino.checkpoint",
        "ecg_dino.consolidate",
        "ecg_dino.export",
        "ecg_dino.features",
    ),
    4: ("ecg_dino.probes", "ecg_dino.pictures"),
    5: ("ecg_dino.commands", "ecg_dino.cli", "ecg_dino.__main__"),
}
EXACT = {"ecg_dino"}  # matches itself only, not every module below it


def module_name(path: Path) -> str:
    """``ecg_dino/probes/mitbih.py`` -> ``ecg_dino.probes.mitbih``; a package's ``__init__`` is the package."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Every module of the project packages, by dotted name."""
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The layer of the longest matching prefix, None for a module no layer names."""
    best: tuple[int, int] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            hit = module == prefix or (prefix not in EXACT and module.startswith(prefix + "."))
            if hit and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported project module, line) of every import in the file, at any depth (inside functions too).

    ``from a.b import c`` is the module ``a.b.c`` when that is a module, else ``a.b``; relative imports are
    resolved against the file's package.
    """
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((child if child in modules else base, node.lineno))
    return list(dict.fromkeys((name, line) for name, line in found if name.split(".")[0] in PACKAGES))


def import_graph() -> dict[str, list[tuple[str, int]]]:
    modules = project_modules()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def where(module: str, line: int) -> str:
    return f"{project_modules()[module].relative_to(REPO)}:{line}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer() -> None:
    unassigned = [m for m in project_modules() if layer_of(m) is None]
    assert not unassigned, f"modules in no layer (add them to LAYERS): {unassigned}"


def test_imports_point_down() -> None:
    bad = []
    for module, imports in import_graph().items():
        mine = layer_of(module)
        for target, line in imports:
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{where(module, line)} imports {target} (layer {theirs}) from layer {mine}")
    assert not bad, "imports pointing up a layer:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in imports} for m, imports in import_graph().items()}
    cycles = strongly_connected(graph)
    if cycles:
        lines = []
        for comp in cycles:
            for module in comp:
                lines += [
                    f"{where(module, line)} imports {target} (layer {layer_of(target)}) from layer {layer_of(module)}"
                    for target, line in import_graph()[module]
                    if target in comp
                ]
        pytest.fail("import cycles:\n" + "\n".join(lines))


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The walker finds an import inside a function body and resolves ``from . import x``."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from ecg_dino.probes import mitbih\n    from . import leads\n")
    modules = {"ecg_dino.probes.mitbih": source, "ecg_dino.leads": source}
    assert imports_of("ecg_dino.x", source, modules) == [("ecg_dino.probes.mitbih", 2), ("ecg_dino.leads", 3)]
    assert (
        layer_of("ecg_dino.probes.mitbih") == 4 and layer_of("ecg_dino") == 3 and layer_of("ecg_dino.nothing") is None
    )
    assert strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
