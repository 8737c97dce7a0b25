"""The package's shape: layers import only downwards, and the repository carries its own theory."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "spectral_jax"
# Lowest first; private layers (`_integrate`, `_checks`) sit below everything.
LAYERS = [
    "_checks", "_jacobian", "_solvers", "_integrate",
    "operators", "modes", "shells", "renorm", "networks", "sweep", "experiments", "cli",
]


def _layer_of(module_path: pathlib.Path) -> str | None:
    parts = module_path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts[0] in LAYERS else None


def _imported_layers(module_path: pathlib.Path):
    """(line, layer) for each relative import that leaves the module's own subpackage."""
    depth = len(module_path.relative_to(PACKAGE).parts) - 1  # 0 for a top-level module
    tree = ast.parse(module_path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > depth:
            target = (node.module or "").split(".")[0]
            if target in LAYERS:
                yield node.lineno, target


def test_no_import_from_a_lower_layer_to_a_higher_one():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        layer = _layer_of(path)
        if layer is None:
            continue
        for line, target in _imported_layers(path):
            if LAYERS.index(target) > LAYERS.index(layer):
                violations.append(f"{path.relative_to(ROOT)}:{line} ({layer} imports {target})")
    assert violations == []


def test_every_subpackage_exists_and_modules_stay_small():
    for layer in (name for name in LAYERS if not name.startswith("_")):
        assert (PACKAGE / layer / "__init__.py").is_file() or (PACKAGE / f"{layer}.py").is_file()
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 330
    }
    assert too_long == {}


def test_the_repository_does_not_point_outside_itself():
    # Built from parts so that this file does not match the pattern it looks for.
    design = "DESIGN"
    pattern = re.compile(f"shared/{design}|{design} [0-9]")
    hits = []
    for path in ROOT.rglob("*"):
        if any(part in {".git", ".venv", "results", "__pycache__"} for part in path.parts):
            continue
        if path.suffix in {".py", ".md", ".toml", ".txt", ""} and path.is_file():
            text = path.read_text(errors="ignore")
            hits += [f"{path.relative_to(ROOT)}" for _ in pattern.finditer(text)]
    assert hits == []
    assert (ROOT / "docs" / "theory.md").is_file()
