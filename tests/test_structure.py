"""The architecture, asserted: imports flow one way (docs/architecture.md), no check imports another,
the Context of a run cannot be changed once built."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from visionaudit.analyses import RunData
from visionaudit.context import Context
from visionaudit.dataset import Dataset

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "visionaudit"

#: What each part of the package may import, lowest layer first (docs/architecture.md, "The flow").
#: A part not listed here has to be placed in the flow before it can be added.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "engine": {"errors"},
    "metrics": {"errors"},
    "features": {"errors", "engine"},
    "dataset": {"errors", "features"},
    "findings": {"errors"},
    "schema": set(),
    "analyses": {"errors", "engine", "metrics", "features", "dataset"},
    "predictors": {"errors", "engine", "metrics", "features", "dataset", "analyses"},
    "context": {"errors", "features", "dataset", "analyses", "predictors"},
    "checks": {"errors", "metrics", "features", "dataset", "findings", "analyses", "predictors", "context"},
    "suites": {"errors", "findings", "checks"},
    "scan": {"errors", "features", "dataset", "findings", "analyses", "predictors", "context", "suites", "__init__"},
    "evaluate": {"errors", "features", "dataset", "findings", "analyses", "context", "suites", "scan", "checks"},
    "report": {"errors", "findings", "schema"},
    "examples": {"errors"},
    "cli": {"errors", "engine", "findings", "checks", "suites", "scan", "evaluate", "report", "examples", "__init__"},
    "__init__": {"errors", "dataset", "findings", "scan", "evaluate"},
}


def _imports(path: Path) -> list[tuple[str, ...]]:
    """The visionaudit modules ``path`` imports, as package-relative parts (``("checks", "base")``)."""
    rel = path.relative_to(PACKAGE)
    here = list(rel.parts[:-1])
    out = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:                    # annotations only: no import at run time
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("visionaudit"):
                    continue
                parts = node.module.split(".")[1:]
            else:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
            if node.module is None or not parts:       # "from . import x": each name is a module
                out += [tuple(parts + [a.name]) for a in node.names]
            else:
                out.append(tuple(parts))
        elif isinstance(node, ast.Import):
            out += [tuple(a.name.split(".")[1:]) for a in node.names if a.name.startswith("visionaudit.")]
    return [p for p in out if p]


#: Imports that break the flow today and are being removed, with the reason; the test fails once one
#: is gone so the entry is deleted with it.
PENDING: dict[str, set[str]] = {}


def _part(parts: tuple[str, ...]) -> str:
    return parts[0] if parts[0] not in ("__version__",) else "__init__"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        yield path, (rel.parts[0] if len(rel.parts) > 1 else rel.stem)


def test_every_part_has_a_place_in_the_flow():
    assert {part for _, part in _modules()} <= set(ALLOWED)


@pytest.mark.parametrize(("path", "part"), list(_modules()), ids=lambda v: str(v.relative_to(PACKAGE)) if isinstance(v, Path) else v)
def test_imports_flow_one_way(path, part):
    wrong = sorted({".".join(p) for p in _imports(path) if _part(p) != part and _part(p) not in ALLOWED[part]})
    pending = PENDING.get(str(path.relative_to(PACKAGE)), set())
    assert pending <= set(wrong), f"{path.relative_to(PACKAGE)} no longer imports {sorted(pending - set(wrong))}: drop it from PENDING"
    wrong = sorted(set(wrong) - pending)
    assert not wrong, f"{path.relative_to(PACKAGE)} ({part}) imports {wrong}; {part} may import only {sorted(ALLOWED[part])}"


def test_no_check_module_imports_another():
    infrastructure = {"__init__", "base", "registry"}
    for path in sorted((PACKAGE / "checks").glob("*.py")):
        if path.stem in infrastructure:
            continue
        others = sorted({p[1] for p in _imports(path) if p[0] == "checks" and len(p) > 1
                         and p[1] not in infrastructure and p[1] != path.stem})
        assert not others, f"checks/{path.name} imports check module(s) {others}: move what they share to analyses/"


def test_the_structure_test_sees_imports(tmp_path):
    # the parser above must see every import form, or the tests above pass vacuously
    assert ("checks", "base") in _imports(PACKAGE / "checks" / "quality.py")
    assert ("analyses", "duplicate_index") in _imports(PACKAGE / "checks" / "duplicates.py")
    assert any(p[0] == "findings" for p in _imports(PACKAGE / "report" / "json.py"))


def test_context_cannot_be_changed_after_construction(tmp_path):
    import pandas as pd

    dataset = Dataset(pd.DataFrame({"sample_id": ["a"], "path": ["a.png"], "label": ["x"], "split": [None]}),
                      source="t", format="folder")
    ctx = Context(dataset)
    for name in ("predictions", "data", "compare", "settings", "anything"):
        with pytest.raises(AttributeError, match="cannot be changed"):
            setattr(ctx, name, None)
    with pytest.raises(AttributeError, match="cannot be changed"):
        del ctx.predictions
    assert ctx.predictions is None and isinstance(ctx.data, RunData)
    with pytest.raises(AttributeError):
        ctx.__dict__                                    # no instance dict to write around the guard
