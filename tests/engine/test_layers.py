"""The engine depends on nothing above it: importing every engine module loads no other
``nearid_data`` module than the engine's own and the few leaf modules it builds on."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator

from tests.build_helpers import ROOT

# Errors, optional imports, the sample's fields, seeding, the strict base model (with its
# did-you-mean helper), and the toolkit's PNG codec (rebuilding fields stored as patches).
ENGINE_LEAVES = {
    "nearid_data",
    "nearid_data.errors",
    "nearid_data.imageio",
    "nearid_data.optional",
    "nearid_data.sample",
    "nearid_data.seeding",
    "nearid_data.strict",
    "nearid_data.suggest",
}


def test_engine_imports_nothing_above_it() -> None:
    engine = sorted(p.stem for p in (ROOT / "nearid_data" / "engine").glob("*.py"))
    script = (
        "import importlib, json, sys\n"
        f"for name in {engine!r}:\n"
        "    importlib.import_module('nearid_data.engine.' + name)\n"
        "names = [m for m in sys.modules if m.startswith('nearid_data') or m == 'ray']\n"
        "print(json.dumps(names))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout))
    above = {m for m in loaded if not m.startswith("nearid_data.engine")} - ENGINE_LEAVES
    assert "nearid_data.engine.ray_executor" in loaded and "ray" not in loaded  # Ray loads lazily
    assert not above, f"the engine imports modules above it: {sorted(above)}"


def _runtime_imports(tree: ast.AST) -> Iterator[str]:
    """Modules a source imports at run time, in functions too; ``if TYPE_CHECKING:`` blocks
    (annotations only) are skipped."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            yield from (name for child in node.orelse for name in _runtime_imports(child))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
        yield from _runtime_imports(node)


def test_no_engine_source_imports_above_it_even_lazily() -> None:
    for path in sorted((ROOT / "nearid_data" / "engine").glob("*.py")):
        imported = set(_runtime_imports(ast.parse(path.read_text(encoding="utf-8"))))
        ours = {m for m in imported if m.split(".")[0] == "nearid_data"}
        above = {m for m in ours if not m.startswith("nearid_data.engine")} - ENGINE_LEAVES
        assert not above, f"{path.name} imports {sorted(above)}"
