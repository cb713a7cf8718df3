"""The package stack: no module imports from a package above its own, so each layer can be read, tested and
reused without the ones on top of it.

    util, config, protocol, stages  <  sim  <  bench  <  policy  <  data, eval  <  algos  <  study, prior, speed
    <  cli

data and eval stand side by side and import neither each other; imports inside functions count too.
"""

import ast
from pathlib import Path

import rl4vla

ROOT = Path(rl4vla.__file__).parent
LEVELS = {"util": 0, "config": 0, "protocol": 0, "stages": 0,  # stages: the generic runner, on util alone
          "sim": 1, "bench": 2, "policy": 3, "data": 4, "eval": 4, "algos": 5, "study": 6, "prior": 6, "speed": 6,
          "cli": 7}
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


def _unsafe_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, call) of every write that a kill could leave half done: Path.write_text/write_bytes, json.dump,
    torch.save and open(..., "w"/"wb"/"x") (appending, as to a metrics log, is allowed)."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
        if name in ("write_text", "write_bytes") or (owner, name) in (("json", "dump"), ("torch", "save")):
            out.append((node.lineno, f"{owner + '.' if owner else ''}{name}"))
        elif name == "open" and not owner:
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"),
                                                                None)
            if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wx"):
                out.append((node.lineno, f"open(.., {mode.value!r})"))
    return out


def test_files_are_written_atomically():
    """Results, configs and checkpoints go through rl4vla.util's atomic helpers, so a killed run leaves the old
    file or the new one, never a torn one that a resume or a report would then read."""
    wrong = [f"{path.relative_to(ROOT.parent)}:{line} {call}"
             for path, parts, _ in _modules() if parts != ("util.py",)
             for line, call in _unsafe_writes(ast.parse(path.read_text(), str(path)))]
    assert not wrong, "non-atomic writes (use rl4vla.util.atomic_write_text / atomic_torch_save):\n" + "\n".join(wrong)


def test_the_write_check_sees_the_unsafe_calls():
    src = ("p.write_text(s)\njson.dump(d, f)\ntorch.save(m, p)\nopen(p, 'w')\nopen(p, mode='wb')\n"
           "open(p, 'a')\nopen(p)\natomic_write_text(p, s)\n")
    assert [line for line, _ in _unsafe_writes(ast.parse(src))] == [1, 2, 3, 4, 5]
