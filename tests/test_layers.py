"""The layers: stage families reach each other only through the engine, vision and the sample.

An AST walk over every import in the package (module level and inside functions). A family may
import another family only where ``ALLOWED`` names the pair, with the reason it still does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nearid_data

PACKAGE = Path(nearid_data.__file__).parent
FAMILIES = frozenset(
    {
        "segment",
        "distractors",
        "galleries",
        "splits",
        "export",
        "evaluate",
        "windows",
        "personalize",
    }
)

# (importing module, imported module) -> why the arrow remains.
ALLOWED: dict[tuple[str, str], str] = {
    (
        "export.fpr",
        "galleries.assign",
    ): "FPR's CSVs name the gallery roles the galleries stage drew",
    ("export.fpr", "galleries.fpr_draw"): "FPR's file names follow the loader its draw reproduces",
    ("personalize.class_images", "export.materialise"): "the atomic folder swap of a layout",
    ("personalize.stage", "export.materialise"): "the atomic folder swap of a layout",
    ("personalize.paste", "distractors.base"): "synthetic photos paste donors as cut-paste does",
    ("personalize.paste", "distractors.cut_paste"): "the same paste as the cut-paste generator",
    ("windows.card", "evaluate.protocols"): "the card's tables use the report's markdown table",
    ("windows.plan", "splits.assign"): "users split by the same seeded rule as identities",
    ("windows.stage", "export.stage"): "windows shards follow export's split order",
    ("windows.stage", "export.wids_index"): "windows shards get export's wids index",
}


def imports_of(path: Path) -> set[str]:
    """The ``nearid_data`` modules ``path`` imports, without the package prefix."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        names.update(
            m.removeprefix("nearid_data.") for m in modules if m.startswith("nearid_data.")
        )
    return names


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")


def arrows(layer: str) -> set[tuple[str, str]]:
    """(importer, imported) for every module under ``layer``."""
    return {
        (module_name(path), imported)
        for path in (PACKAGE / layer).rglob("*.py")
        for imported in imports_of(path)
    }


def test_imports_of_sees_module_level_and_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import nearid_data.vision.masks\n"
        "from nearid_data.export import stage\n"
        "import numpy\n"
        "def f():\n"
        "    from nearid_data.splits.assign import assign_splits\n"
    )
    assert imports_of(source) == {"vision.masks", "export", "splits.assign"}


def test_stage_families_import_each_other_only_where_allowed() -> None:
    crossing = {
        (importer, imported)
        for family in FAMILIES
        for importer, imported in arrows(family)
        if imported.split(".")[0] in FAMILIES - {family}
    }
    assert crossing - ALLOWED.keys() == set(), "a stage family imports another one"
    assert ALLOWED.keys() - crossing == set(), "an allowed exception no longer exists: drop it"


def test_vision_and_engine_import_no_stage_family() -> None:
    above = {"vision": FAMILIES, "engine": FAMILIES | {"vision"}}
    for layer, layers_above in above.items():
        upward = {(a, b) for a, b in arrows(layer) if b.split(".")[0] in layers_above}
        assert upward == set(), f"{layer} imports a layer above it"
