"""The package stack: no module imports from a package above its own, so each layer can be read, tested and
reused without the ones on top of it.

    util, config, protocol  <  sim  <  bench  <  policy  <  data, eval  <  algos  <  study, prior, speed  <  cli

data and eval stand side by side and import neither each other; imports inside functions count too.
"""

import ast
from pathlib import Path

import rl4vla

ROOT = Path(rl4vla.__file__).parent
LEVELS = {"util": 0, "config": 0, "protocol": 0, "sim": 1, "bench": 2, "policy": 3, "data": 4, "eval": 4, "algos": 5,
          "study": 6, "prior": 6, "speed": 6, "cli": 7}
APART = {frozenset({"data", "eval"})}  # same level, and still independent


def _unit(parts: tuple[str, ...]) -> str:
    """The stack unit of a module path below rl4vla: its package, or the top-level module's own name."""
    return parts[0].removesuffix(".py")


def _imports(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every rl4vla import in a module, anywhere in it; `package` resolves
    relative imports."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base == "rl4vla":  # from rl4vla import sim
                out += [(node.lineno, f"rl4vla.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, base))
    return [(line, m) for line, m in out if m.startswith("rl4vla.")]


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts == ("__init__.py",):
            continue
        package = ".".join(("rl4vla", *parts[:-1]))
        yield path, parts, package


def test_every_package_has_a_level():
    units = {_unit(parts) for _, parts, _ in _modules()}
    missing = sorted(units - set(LEVELS))
    assert not missing, f"place {missing} in the stack: add them to LEVELS in {__file__}"


def test_no_module_imports_from_above_its_level():
    wrong = []
    for path, parts, package in _modules():
        own = _unit(parts)
        for line, module in _imports(ast.parse(path.read_text(), str(path)), package):
            other = module.split(".")[1]
            if other == own or other not in LEVELS or own not in LEVELS:
                continue
            if LEVELS[other] > LEVELS[own] or frozenset({own, other}) in APART:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} ({own}) imports {module} ({other})")
    assert not wrong, "imports against the stack:\n" + "\n".join(wrong)


def test_the_check_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from rl4vla.algos.sft import PRESETS\n    import rl4vla.cli\n")
    assert _imports(tree, "rl4vla.policy") == [(2, "rl4vla.algos.sft"), (3, "rl4vla.cli")]
    assert _imports(ast.parse("from ..eval import run\n"), "rl4vla.data") == [(1, "rl4vla.eval")]

