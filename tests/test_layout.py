"""The house rules of the code layout (DESIGN.md §8), checked: dependencies point one way,
modules stay readable, importing has no side effects."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cmdvideo"
BASE = {"config", "hub", "runtime", "__version__"}  # usable from anywhere
# What each package may import from cmdvideo (besides itself and BASE). training/ does not use
# evaluation/: previews compute what they log themselves.
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
MAX_LINES = 600


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts)


def _cmdvideo_imports(path: Path) -> set[str]:
    """Top-level cmdvideo packages a module imports (absolute or relative), at any depth."""
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
            found.update(parts[:1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("cmdvideo."))
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_dependencies_point_one_way(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if own not in ALLOWED:
        return  # top-level modules (config, hub, __init__)
    imported = _cmdvideo_imports(path) - {own} - BASE
    assert imported <= ALLOWED[own], f"{own}/ may not import {sorted(imported - ALLOWED[own])}"


def test_no_module_is_too_long():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    assert long == {}


def test_importing_training_loads_no_evaluation_and_has_no_side_effects():
    code = (
        "import sys, torch; before = torch.get_num_threads()\n"
        "import cmdvideo, cmdvideo.training.stages, cmdvideo.training.run, cmdvideo.cli\n"
        "bad = [m for m in sys.modules if m.startswith(('cmdvideo.evaluation', 'cmdvideo.benchmarks'))]\n"
        "assert bad == [], bad\n"
        "assert torch.get_num_threads() == before\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
