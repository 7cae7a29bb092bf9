"""The packages' imports point one way: rules and runtime import nothing of ours; tables builds on
them; worker on tables; web on worker's messaging and tables; the `tenure` command sits on top.
Imports inside functions count too (they are how a lower layer would sneak upward)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"rules", "runtime", "tables", "worker", "web", "command"}
MAY_IMPORT = {
    "rules": {"rules"},
    "runtime": {"runtime"},
    "tables": {"tables", "rules", "runtime"},
    "worker": {"worker", "tables", "rules", "runtime"},
    "web": {"web", "worker", "tables", "rules", "runtime"},
    "command": OURS,
}
MODULES = sorted(path for package in OURS for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts)


def our_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def test_every_package_is_checked():
    assert {path.relative_to(ROOT).parts[0] for path in MODULES} == OURS


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_point_down(path):
    package = path.relative_to(ROOT).parts[0]

    upward = our_imports(path) - MAY_IMPORT[package]

    assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)}"
