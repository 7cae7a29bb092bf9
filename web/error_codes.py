"""The error codes each route can answer, read from the code itself (no list kept by hand).

How. Every module of rules/, tables/ and web/ is parsed once (`ast`). An error is *made*
where one of our error classes is called, whether the call is raised at once or kept
for later (`problem = InvalidCursor(...)`): a class with a fixed `code` (NotFound,
PermissionDenied, every RuleViolation) gives that code, with the class's `status`; a class
that takes the code as its first argument (Conflict, Invalid, BadHeader) gives the string
passed. `error_response(400, "invalid_request", ...)` and Litestar's ValidationException
(400 `invalid_request`) count as well.

The codes a function can answer are those it makes plus those of every function it
calls, followed through the module's imports (`intake.purchase_params(...)`,
`NotFound(...)`, `self.method(...)`), through nested functions and lambdas, and through
the constructors of the classes it calls. A method called on an object whose class the
module does not name (`found.require(...)`) is looked up by name among the classes of
web/ and rules/. The approximation errs on the side of a code too many (a branch that
cannot run for this route still counts), never a code missing; tests/api/test_contract.py
drives real errors through real routes and finds each one in its route's enum.

A route's codes are its handler's, its dependencies' (the API key: 401, 429; the ops
token), its request Struct's `__post_init__`, and those of the checks every request
passes (web/edge.py: control characters, unknown query parameters, the strict body;
the Idempotency-Key middleware on POSTs; the per-route rate limits), read the same way.
A new `raise Conflict("x", ...)` in a handler, or in anything it calls, shows in that
route's enum with no other change.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import pathlib
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import msgspec

from rules.errors import RuleViolation
from web.errors import ApiError, rule_status

PACKAGES = ("rules", "tables", "web")
# A method called on an object of unknown class is looked up among these packages' classes.
METHOD_PACKAGES = ("rules.", "web.")
# Errors raised by code that is not ours, as the app answers them (web/errors.py).
FOREIGN_ERRORS = {"litestar.exceptions.ValidationException": (400, "invalid_request")}
ERROR_RESPONSE = "web.errors.error_response"


@dataclass
class _Function:
    """What one function (or class body) makes and calls, before following the calls."""

    made: set[tuple[int, str]] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)


@dataclass
class _Module:
    name: str
    imports: dict[str, str]  # local name -> qualified name (module or object)
    defs: set[str]  # top-level function and class names


def _modules() -> Iterator[tuple[str, ast.Module]]:
    """Each module's source, read from its file (nothing is imported: no module runs)."""
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        root = pathlib.Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root.parent).with_suffix("")
            if "migrations" in relative.parts:
                continue
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            yield ".".join(parts), ast.parse(path.read_text(encoding="utf-8"))


def _imports(name: str, tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x
                parent = name.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                found[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]  # `import a.b` binds `a`; `import a.b as c` binds `c`
                found[alias.asname or top] = alias.name if alias.asname else top
    return found


def _status(cls: type, code: str) -> int:
    """A web error's own status, or the status web.errors gives a rule violation's code."""
    return rule_status(code) if issubclass(cls, RuleViolation) else cls.status


class _ErrorClasses:
    """Our error classes by qualified name: a fixed (status, code), or a status and a code argument."""

    def __init__(self) -> None:
        self.fixed: dict[str, tuple[int, str]] = {}
        self.takes_code: dict[str, int] = {}
        for base in (ApiError, RuleViolation):
            for cls in _subclasses(base):
                qualified = f"{cls.__module__}.{cls.__qualname__}"
                if "code" in inspect.signature(cls.__init__).parameters:
                    self.takes_code[qualified] = cls.status
                elif (code := _code_given_to_super(cls)) is not None:
                    self.fixed[qualified] = (_status(cls, code), code)
                else:
                    self.fixed[qualified] = (_status(cls, cls.code), cls.code)

    def made_by(self, target: str, call: ast.Call) -> tuple[int, str] | None:
        if target in self.fixed:
            return self.fixed[target]
        if target in FOREIGN_ERRORS:
            return FOREIGN_ERRORS[target]
        if target in self.takes_code:
            code = (
                _literal(call.args[0])
                if call.args
                else next((_literal(k.value) for k in call.keywords if k.arg == "code"), None)
            )
            return (self.takes_code[target], code) if code else None
        if target == ERROR_RESPONSE and len(call.args) >= 2:
            status, code = _literal(call.args[0]), _literal(call.args[1])
            if isinstance(status, int) and isinstance(code, str):
                return status, code
        return None


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _code_given_to_super(cls: type) -> str | None:
    """`super().__init__("code", ...)` in the class's own constructor (IdempotencyKeyInUse)."""
    init = cls.__dict__.get("__init__")
    if init is None or not any(
        "code" in inspect.signature(c.__init__).parameters for c in cls.__mro__[1:] if c.__dict__.get("__init__")
    ):
        return None
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(init)))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
            and node.args
            and isinstance(code := _literal(node.args[0]), str)
        ):
            return code
    return None


def _literal(node: ast.AST) -> object:
    return node.value if isinstance(node, ast.Constant) else None


class CodeIndex:
    """Every function of rules/, tables/ and web/ with the errors it makes and what it calls."""

    def __init__(self) -> None:
        self.errors = _ErrorClasses()
        self.functions: dict[str, _Function] = {}
        self.modules: dict[str, _Module] = {}
        self.methods: dict[str, set[str]] = {}  # method name -> qualified names (web/, rules/ classes)
        self.classes: set[str] = set()
        parsed = list(_modules())
        for name, tree in parsed:
            defs = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
            self.modules[name] = _Module(name, _imports(name, tree), defs)
        functions: list[tuple[str, str | None, ast.AST, str]] = []  # module, class, node, name
        for name, tree in parsed:
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.append((name, None, node, f"{name}.{node.name}"))
                elif isinstance(node, ast.ClassDef):
                    self.classes.add(f"{name}.{node.name}")
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            qualified = f"{name}.{node.name}.{item.name}"
                            functions.append((name, node.name, item, qualified))
                            if name.startswith(METHOD_PACKAGES) and not item.name.startswith("__"):
                                self.methods.setdefault(item.name, set()).add(qualified)
        for module, cls, node, qualified in functions:  # once every method is known
            self._read(module, cls, node, qualified)

    def _read(self, module: str, cls: str | None, node: ast.AST, qualified: str) -> None:
        seen = _Function()
        for inner in ast.walk(node):
            if not isinstance(inner, ast.Call):
                continue
            for target in self._targets(module, cls, inner.func):
                made = self.errors.made_by(target, inner)
                if made is not None:
                    seen.made.add(made)
                seen.calls.add(target)
        self.functions[qualified] = seen

    def _targets(self, module: str, cls: str | None, func: ast.AST) -> list[str]:
        where = self.modules[module]
        if isinstance(func, ast.Name):
            if func.id in where.defs:
                return [f"{module}.{func.id}"]
            return [where.imports[func.id]] if func.id in where.imports else []
        if isinstance(func, ast.Attribute):
            owner = func.value
            if isinstance(owner, ast.Name):
                if owner.id in ("self", "cls") and cls is not None:
                    return [f"{module}.{cls}.{func.attr}"]
                if owner.id in where.defs:
                    return [f"{module}.{owner.id}.{func.attr}"]
                imported = where.imports.get(owner.id)
                if imported in self.modules:
                    return [f"{imported}.{func.attr}"]
                if imported is not None:  # an imported class: its classmethod / staticmethod
                    return [f"{imported}.{func.attr}"]
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                return []
            return sorted(self.methods.get(func.attr, ()))
        return []

    def codes(self, roots: list[str]) -> set[tuple[int, str]]:
        """Every (status, code) the functions `roots` (qualified names) can answer."""
        found: set[tuple[int, str]] = set()
        todo, seen = list(roots), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in self.classes:  # a constructor call
                todo += [f"{name}.__init__", f"{name}.__post_init__"]
                continue
            function = self.functions.get(name)
            if function is None:
                continue
            found |= function.made
            todo += function.calls
        return found


@cache
def index() -> CodeIndex:
    return CodeIndex()


def qualified_name(fn: object) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def struct_types(annotation: object) -> list[type]:
    """The msgspec Structs a request body type holds, itself and nested (for `__post_init__`)."""
    found: list[type] = []
    todo = [msgspec.inspect.type_info(annotation)] if annotation is not None else []
    while todo:
        info = todo.pop()
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in found:
                continue
            found.append(info.cls)
            todo += [f.type for f in info.fields]
        elif isinstance(info, msgspec.inspect.UnionType):
            todo += list(info.types)
        elif isinstance(
            info,
            (
                msgspec.inspect.ListType,
                msgspec.inspect.SetType,
                msgspec.inspect.FrozenSetType,
                msgspec.inspect.VarTupleType,
            ),
        ):
            todo.append(info.item_type)
        elif isinstance(info, msgspec.inspect.DictType):
            todo.append(info.value_type)
        elif isinstance(info, msgspec.inspect.Metadata):
            todo.append(info.type)
    return found
