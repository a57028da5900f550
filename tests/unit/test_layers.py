"""The package's layers, bound to the code: each folder imports only from the layers below it (or its own
folder), so a newcomer can change one layer without touching those above, and no import runs in a circle.

    cli, __main__              the commands a person types (`python -m zfsync` runs them too)
    runtime                    the running process: composition root, daemon, leader, status, metrics
    sim                        the simulators and the in-memory fakes (a stand-in for the sides)
    sync                       the core: deciders, readers, writers, desk extras; it sees ports, not HTTP or SQL
    sides, store, config       each API and its transport; the store; the settings
    domain, log, i18n          the vocabulary (values and errors) and the helpers every layer uses
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "zfsync"
LAYERS = [
    {"domain", "log", "i18n"},
    {"sides", "store", "config"},
    {"sync"},
    {"sim"},
    {"runtime"},
    {"cli", "__main__"},
]
LAYER_OF = {part: number for number, parts in enumerate(LAYERS) for part in parts}


def top(module: str) -> str:
    """``zfsync.sides.zalo.client`` -> ``sides``."""
    return module.split(".")[1] if module.count(".") else "__init__"


def imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(p for p in relative.parts if p != "__init__")
        targets = found.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zfsync"):
                base = node.module
                targets.update(f"{base}.{a.name}" if base == "zfsync" else base for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("zfsync"))
    return found


def test_every_folder_of_the_package_has_a_layer():
    parts = {top(m) for m in imports()} - {"__init__"}
    assert parts <= set(LAYER_OF), f"a folder or module with no layer: {sorted(parts - set(LAYER_OF))}"


def test_no_import_runs_up_a_layer():
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in imports().items()
        if top(source) in LAYER_OF
        for target in targets
        if top(target) in LAYER_OF and LAYER_OF[top(target)] > LAYER_OF[top(source)]
    )
    assert upward == []


def test_no_folder_imports_another_of_its_own_layer_in_a_circle():
    graph: dict[str, set[str]] = {}
    for source, targets in imports().items():
        graph.setdefault(top(source), set()).update(top(t) for t in targets if top(t) != top(source))
    seen: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"a circle of imports: {' -> '.join((*path, node))}"
        if node in seen:
            return
        for following in graph.get(node, ()):
            visit(following, (*path, node))
        seen.add(node)

    for node in graph:
        visit(node, ())


def test_the_deciders_make_no_request_and_read_no_store():
    """`zfsync.sync.decide` is the plan half of "plan, then act": it sees values, not ports or the store."""
    allowed = ("zfsync.domain", "zfsync.domain.errors", "zfsync.i18n", "zfsync.sync.decide")
    reached = sorted(
        f"{source} -> {target}"
        for source, targets in imports().items()
        if source.startswith("zfsync.sync.decide")
        for target in targets
        if not target.startswith(allowed)
    )
    assert reached == []


def test_the_package_root_shows_the_layers_at_a_glance():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 12, entries


def test_every_folder_says_what_lives_there_and_what_it_may_import():
    for init in sorted(PACKAGE.rglob("__init__.py")):
        said = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        folder = init.parent.relative_to(PACKAGE.parent)
        assert len(said) >= 80 and "import" in said, (
            f"{folder}/__init__.py: say what lives there and what it may import"
        )


def test_no_module_is_a_long_room():
    """No runtime module over 350 lines, no class over 200 (the simulators excepted: one class per
    simulated host)."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sim" in path.relative_to(PACKAGE).parts:
            continue
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(PACKAGE.parent)
        if len(text.splitlines()) > 350:
            long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno and node.end_lineno - node.lineno + 1 > 200:
                long.append(f"{name}: class {node.name}, {node.end_lineno - node.lineno + 1} lines")
    assert long == [], long
