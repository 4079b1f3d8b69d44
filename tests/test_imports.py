"""The import graph of the library packages: no circle between modules (function-local imports count too),
and no package imports another package's private names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("steering", "data", "training", "monitoring")  # top-level folders, linked into persona_vaccine/
INNER = ("models", "judges", "traits", "interop")  # packages inside persona_vaccine/
BASICS = ("errors", "paths", "choices", "cli_args", "lock", "jsonl", "llm_http", "vllm_request")
PREFIX = "persona_vaccine."  # the one import name: persona_vaccine.steering, persona_vaccine.data, ...


def module_files() -> dict[str, Path]:
    """{dotted module name: file} of every module of the packages (subpackages included)."""
    modules = {}
    for base, packages in ((ROOT, PACKAGES), (ROOT / "persona_vaccine", INNER)):
        for package in packages:
            for path in sorted((base / package).rglob("*.py")):
                parts = list(path.relative_to(base).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                modules[".".join(parts)] = path
    for name in BASICS:
        modules[name] = ROOT / "persona_vaccine" / f"{name}.py"
    return modules


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def imports(modules: dict[str, Path]) -> list[tuple[str, str, str | None, int]]:
    """(importer, imported module, imported name or None, line) for every import statement anywhere in
    each module (module level, functions, methods), restricted to the packages' own modules."""
    found = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.name.removeprefix(PREFIX)
                    if name in modules:
                        found.append((module, name, None, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = _base(module, path, node).removeprefix(PREFIX)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:  # `from package import module`
                        found.append((module, submodule, None, node.lineno))
                    elif base in modules:
                        found.append((module, base, alias.name, node.lineno))
    return found


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A circle of the directed graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_circle_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_function_local_and_relative_imports_are_seen():
    found = {(a, b) for a, b, _, _ in imports(module_files())}
    assert ("training.compare", "training.evaluation") in found  # a function-local relative import
    assert ("training.run", "training.trainer") in found
    assert ("training.trainer", "steering.hooks") in found  # across packages, through persona_vaccine.


def test_the_packages_are_imported_only_through_the_one_import_name():
    """`from steering...` would load a second copy of a module beside `persona_vaccine.steering...`."""
    bare = []
    for path in [
        *module_files().values(),
        ROOT / "launch.py",
        *ROOT.glob("tests/*.py"),
        *ROOT.glob("bench/*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            bare += [
                f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in PACKAGES
            ]
    assert not bare, "\n".join(bare)


def test_no_import_circle_between_modules_or_packages():
    modules: dict[str, set[str]] = {}
    packages: dict[str, set[str]] = {}
    for importer, imported, _, _ in imports(module_files()):
        if importer != imported:
            modules.setdefault(importer, set()).add(imported)
        if importer.split(".")[0] != imported.split(".")[0]:
            packages.setdefault(importer.split(".")[0], set()).add(imported.split(".")[0])
    cycle = find_cycle(modules)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])
    cycle = find_cycle(
        packages
    )  # the layers: steering <- data <- training, steering <- monitoring <- training
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def test_no_package_imports_private_names_of_another():
    private = [
        f"{importer} (line {line}) imports {name} from {imported}"
        for importer, imported, name, line in imports(module_files())
        if importer.split(".")[0] != imported.split(".")[0]
        and any(
            part.startswith("_") and not part.startswith("__") for part in [*imported.split("."), name or ""]
        )
    ]
    assert not private, "\n".join(private)


# a bare module path a user would paste: `from steering.models import f`, `steering.hooks.steer(...)`
BARE_IN_TEXT = re.compile(
    r"(?<![\w.])(?:from|import)\s+(?:steering|data|training|monitoring)\.\w"
    r"|(?<![\w./])(?:steering|data|training|monitoring)\.[a-z_]+\.[a-z_]+\("
)
BY_NAME = ("files", "import_module", "find_spec", "as_file", "open_text", "read_text")


def test_package_data_and_hints_use_the_one_import_name():
    """Installed, `monitoring` is `persona_vaccine.monitoring`: `resources.files("monitoring")` fails there, and
    a hint naming `steering.models...` can't be pasted. Lookups by name and texts use the full name."""
    found = []
    for path in [*module_files().values(), ROOT / "persona_vaccine" / "cli.py", ROOT / "launch.py"]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                name = node.args[0].value
                called = ast.unparse(node.func).split(".")[-1]
                if called in BY_NAME and isinstance(name, str) and name.split(".")[0] in PACKAGES:
                    found.append(f"{where} {ast.unparse(node)}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [f"{where} {m.group(0)!r}" for m in BARE_IN_TEXT.finditer(node.value)]
    assert not found, "\n".join(found)
