import ast
import sys
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "rules"
ALLOWED_TOP_LEVEL = set(sys.stdlib_module_names) | {"idna", "rules"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}
IO_CALLS = {"open", "print", "input"}

MODULES = sorted(RULES.glob("*.py"))


def imported_modules(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # A relative import stays inside rules.
            yield "rules" if node.level else node.module


def calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                yield func.attr
            elif isinstance(func, ast.Name):
                yield func.id


def test_rules_package_has_modules():
    assert {path.name for path in MODULES} >= {"__init__.py", "money.py", "lifecycle.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_rules_import_only_stdlib_idna_and_rules(path):
    tree = ast.parse(path.read_text(), filename=str(path))

    foreign = {name for name in imported_modules(tree) if name.split(".")[0] not in ALLOWED_TOP_LEVEL}

    assert not foreign, f"{path.name} imports {sorted(foreign)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_rules_neither_read_the_clock_nor_do_io(path):
    tree = ast.parse(path.read_text(), filename=str(path))

    forbidden = set(calls(tree)) & (CLOCK_CALLS | IO_CALLS)

    assert not forbidden, f"{path.name} calls {sorted(forbidden)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_rules_have_no_float_literals(path):
    tree = ast.parse(path.read_text(), filename=str(path))

    floats = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, float)]

    assert not floats, f"{path.name} has float literals {floats}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_rules_modules_stay_small(path):
    assert len(path.read_text().splitlines()) < 300
