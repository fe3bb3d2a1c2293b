"""The house rules of the code layout (docs/design.md, "Layout rules"), checked: dependencies point one way,
modules stay readable, importing has no side effects."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cmdvideo"
BASE = {"config", "hub", "runtime", "__version__"}  # usable from anywhere
# What each package may import from cmdvideo (besides itself and BASE). training/ does not use
# evaluation/ but for its pixel metrics (PSNR, SSIM: what previews log), a torch-only module.
ALLOWED = {
    "data": set(),
    "models": {"data"},
    "pipelines": {"models", "data"},
    "evaluation": {"pipelines", "models", "data"},
    "training": {"pipelines", "models", "data"},
    "benchmarks": {"training", "evaluation", "pipelines", "models", "data"},
    "app": {"pipelines", "models", "data"},
    "cli": {"app", "benchmarks", "training", "evaluation", "pipelines", "models", "data"},
}
MAX_LINES = 500
# Single modules a package may import from a package it may not import otherwise.
ALLOWED_MODULES = {"training": {"evaluation.quality"}}
EXCEPTIONS = set().union(*ALLOWED_MODULES.values())


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts)


def _cmdvideo_imports(path: Path) -> set[str]:
    """Top-level cmdvideo packages a module imports (absolute or relative), at any depth; a
    module of `ALLOWED_MODULES` stands as itself ("evaluation.quality")."""
    package = path.relative_to(PACKAGE).parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(package[:-1])[: len(package) - node.level]
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # "from .. import x": x is the package
                    parts = [alias.name for alias in node.names]
            elif node.module and node.module.startswith("cmdvideo."):
                parts = node.module.split(".")[1:]
            else:
                continue
            found.add(".".join(parts[:2]) if ".".join(parts[:2]) in EXCEPTIONS else parts[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("cmdvideo."))
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_dependencies_point_one_way(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    imported = {m for m in _cmdvideo_imports(path) if m.split(".")[0] != own} - BASE
    # the base modules (config, hub, runtime) and the package's __init__ import nothing else
    allowed = ALLOWED.get(own, set()) | ALLOWED_MODULES.get(own, set())
    assert imported <= allowed, f"{own} may not import {sorted(imported - allowed)}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """The cmdvideo modules one module imports, at any depth (inside functions too), resolved
    to the modules they name (``from . import x``: the submodule x when there is one)."""
    own = _module_name(path).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + (node.module.split(".") if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            found.update(n for n in names if n in known)
            if target in known and not any(n in known for n in names):
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    return found - {_module_name(path)}


def test_no_import_circle():
    """No module reaches itself through the modules it imports (lazy imports included): a
    circle means two modules that are one concept, or a helper in the wrong one."""
    modules = {_module_name(p): p for p in _modules()}
    graph = {name: _imported_modules(path, set(modules)) for name, path in modules.items()}
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    circles = []
    for start in graph:  # a path back to `start` through modules below it in sort order
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for dep in graph[node]:
                if dep == start:
                    circles.append(" -> ".join([*trail, start]))
                elif dep > start and dep not in seen:
                    seen.add(dep)
                    stack.append((dep, [*trail, dep]))
    assert circles == []


def test_no_module_is_too_long():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_importing_training_loads_no_evaluation_and_has_no_side_effects():
    code = (
        "import sys, torch; before = torch.get_num_threads()\n"
        "import cmdvideo, cmdvideo.training.stages, cmdvideo.training.run, cmdvideo.cli\n"
        "light = {'cmdvideo.evaluation', 'cmdvideo.evaluation.quality'}\n"
        "bad = [m for m in sys.modules if m.startswith(('cmdvideo.evaluation', 'cmdvideo.benchmarks'))\n"
        "       and m not in light]\n"
        "assert bad == [], bad\n"
        "assert torch.get_num_threads() == before\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


MAX_FUNCTION_LINES = 60  # of code, the docstring aside: a function a reader takes in at once


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the signature to the end, without the docstring."""
    lines = node.end_lineno - node.lineno + 1
    if ast.get_docstring(node, clean=False) is not None:
        docstring = node.body[0]
        lines -= docstring.end_lineno - docstring.lineno + 1
    return lines


def test_no_long_function():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = _code_lines(node)
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name} {lines} lines")
    assert long == []


def test_the_formatter_decides_the_layout_almost_everywhere():
    """Formatter opt-outs stay rare (under 20 in the repository's Python)."""
    root = PACKAGE.parent
    skips = [
        f"{p.relative_to(root)}:{i}"
        for top in ("cmdvideo", "tests", "experiments", "scripts")
        for p in (root / top).rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "fmt: skip" in line or "fmt: off" in line
    ]
    assert len(skips) < 20, skips


def test_imports_inside_functions_are_the_few_that_must_be():
    """Imports inside functions outside cli/ and benchmarks/ (which keep `--help` and the
    benchmark workers light) stay few: optional extras (transformers, peft, the metrics'
    EfficientNet), what the CLI's checks load before torch (arguments, hub, runtime), a
    version fallback of diffusers."""
    found = [
        f"{p.relative_to(PACKAGE)}:{n.lineno}"
        for p in _modules()
        if p.relative_to(PACKAGE).parts[0] not in ("cli", "benchmarks")
        for f in ast.walk(ast.parse(p.read_text()))
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    assert len(found) <= 30, found
