"""Small shared helpers: atomic file writes, early checks of flags and output paths, resume checks, torch threads
and devices."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

SEED_LIMIT = 2**32  # episode seeds seed numpy generators as 32-bit words
MAX_AUTO_THREADS = 4  # --torch-threads 0 (auto) uses at most this many
DEVICES = ("auto", "cpu", "cuda")  # --device: auto = cuda when torch sees a GPU, else cpu


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write a file so that readers see either the old or the new content, never a partial one:
    `write(f)` fills a temporary file beside `path`, which is synced and then renamed over it."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are for reading
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """torch.save, atomically (checkpoints survive a kill mid-write)."""
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


# ----- checks of flags, before any work -----------------------------------------------------
def flag(name: str) -> str:
    """A config field as the command line spells it: batch_size -> --batch-size, env.num_envs -> --env.num-envs."""
    return "--" + name.replace("_", "-")


def check_at_least(cfg, names: Iterable[str], minimum: int = 1) -> None:
    """ValueError naming the first field of `names` (dotted for a nested config: env.num_envs) below `minimum` or
    unset, e.g. "--batch-size must be >= 1, got 0"."""
    for name in names:
        v = attrgetter(name)(cfg)
        if v is None or v < minimum:
            raise ValueError(f"{flag(name)} must be >= {minimum}, got {v}")


def check_seed(seed: int, what: str = "--seed") -> int:
    """A seed in [0, 2**32): larger or negative ones would alias smaller ones (or overflow) in the generators."""
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{what} {seed} is out of range: seeds must be in [0, {SEED_LIMIT - 1}]")
    return seed


def _probe_dir(d: Path, what: str) -> None:
    """Create directory d (and parents) and check that a file can be written in it."""
    blocker = next((a for a in (d, *d.parents) if a.exists() and not a.is_dir()), None)
    if blocker is not None:
        raise ValueError(f"{what}: {blocker} is a file, not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ValueError(f"{what}: cannot write in {d} ({e.strerror or e})") from None


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """An output directory, created now and known writable, so a bad path fails before the work, not after."""
    _probe_dir(Path(path), f"{what} {path}")
    return Path(path)


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """An output file path whose directory is writable (created now) and that is not a directory itself."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {path} is a directory; give a file path, e.g. {p / 'results.json'}")
    _probe_dir(p.parent, f"{what} {path}")
    return p


def write_or_rescue(path: str | os.PathLike, text: str, what: str = "--out") -> Path:
    """atomic_write_text, or, when that fails at the end of long work, the same text saved in the current directory
    (or the temporary one) and a RuntimeError that says where."""
    try:
        atomic_write_text(path, text)
        return Path(path)
    except OSError as e:
        err = e
    for d in (Path.cwd(), Path(tempfile.gettempdir())):
        rescue = d / f"rescued-{os.getpid()}-{Path(path).name or 'results.json'}"
        try:
            atomic_write_text(rescue, text)
        except OSError:
            continue
        raise RuntimeError(f"cannot write {what} {path} ({err.strerror or err}); the results were saved to "
                           f"{rescue.resolve()} instead")
    raise RuntimeError(f"cannot write {what} {path} ({err.strerror or err}), nor a rescue copy in the current or "
                       "the temporary directory")


# ----- resuming -----------------------------------------------------------------------------
def _flat(d: dict, prefix: str = "") -> dict:
    """A config as flat JSON values: nested configs become dotted keys (model.d_model)."""
    out = {}
    for k, v in json.loads(json.dumps(d)).items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _moved(key: str, asked: dict) -> str:
    """Where a recorded setting is asked now: its own key, or, for a top-level field that has since moved into a
    nested config (num_envs -> env.num_envs, in records written before the env flags were grouped), its one new
    place."""
    if key in asked or "." in key:
        return key
    places = [k for k in asked if k.count(".") == 1 and k.endswith(f".{key}")]
    return places[0] if len(places) == 1 else key


def changed_settings(recorded: dict, asked: dict, may_differ: Iterable[str] = ()) -> list[tuple[str, object, object]]:
    """(field, recorded value, asked value) of each setting that differs, except those in may_differ. Fields the
    record lacks (added to rl4vla after it was written) are not compared; fields it holds where they were before
    a config was nested are compared with their new place."""
    new, skip = _flat(asked), set(may_differ)
    old = {_moved(k, new): v for k, v in _flat(recorded).items()}
    return [(k, old[k], new.get(k)) for k in sorted(old) if k not in skip and old[k] != new.get(k)]


def resume_checkpoint(cfg, may_differ: Iterable[str]) -> dict | None:
    """The checkpoint a training run continues from (cfg.out/checkpoint.pt; None for a new run). A ValueError,
    before any work, when the run exists without --resume, its checkpoint is unreadable, or it was started with
    other settings (the run would be a mix of two configurations): only the fields in may_differ, which do not
    change the result (workers, threads, checkpoint interval), and the run's place (out) may change; config.json
    records the new values."""
    import dataclasses

    path = Path(cfg.out) / "checkpoint.pt"
    if not path.exists():
        return None
    if not cfg.resume:
        raise ValueError(f"{cfg.out} already has a checkpoint: pass --resume to continue it, or choose another --out")
    ck = load_checkpoint(path)
    diff = changed_settings(ck["config"], dataclasses.asdict(cfg), {"out", "resume", *may_differ})
    if diff:
        shown = "; ".join(f"{flag(k)} {a!r} -> {b!r}" for k, a, b in diff)
        raise ValueError(f"{path} was trained with other settings ({shown}): resume with the same flags (only "
                         f"{', '.join(flag(k) for k in sorted(may_differ))} may change), or choose another --out")
    return ck


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A training checkpoint (torch.load), or a ValueError naming the file and what to do when it is unreadable."""
    import torch

    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        first = (str(e).splitlines() or [""])[0]
        raise ValueError(f"cannot resume: {path} is truncated or corrupt ({type(e).__name__}: {first}); delete it "
                         "and train again without --resume, or choose another --out") from e
    if not isinstance(ck, dict) or "config" not in ck:
        raise ValueError(f"cannot resume: {path} is not an rl4vla training checkpoint; delete it and train again "
                         "without --resume, or choose another --out")
    return ck


# ----- torch threads ------------------------------------------------------------------------
def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_workers(value, what: str = "--env.workers"):
    """An env worker count known valid: 'auto' or an integer >= 0; a ValueError naming the valid values otherwise."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"{what} must be 'auto' (one per usable CPU, less two for the policy on machines with more than "
                     f"four) or an integer >= 0 (0 = step every scene in the command's own process), got {value!r}")


def auto_workers(num_envs: int) -> int:
    """The local env workers of --env.workers auto: one per usable CPU on up to four of them (2 on the 2-core
    machine: 420 env steps/s against 236 with one), else all but two, which stay with the policy and the
    learner (14 on the 16-core GPU machine, the most measured there: 1,164 env steps/s); never more than the
    scenes."""
    cores = usable_cpus()
    return max(1, min(num_envs, cores if cores <= 4 else cores - 2))


def auto_threads(n: int) -> int:
    """The torch threads --torch-threads N asks for: N, or for 0 (auto) torch's current setting (its default: one
    per core, or OMP_NUM_THREADS) capped at the CPUs this process may use and at MAX_AUTO_THREADS: on a many-core
    machine torch's default spins threads the small VLA cannot use, burning CPU beside other jobs."""
    import torch

    if n < 0:
        raise ValueError(f"--torch-threads must be >= 0 (0 = auto: torch's default, at most {MAX_AUTO_THREADS}), "
                         f"got {n}")
    return n or min(torch.get_num_threads(), usable_cpus(), MAX_AUTO_THREADS)


@contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """torch's intra-op threads set to auto_threads(n) inside the block, restored after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(auto_threads(n))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


# ----- devices ------------------------------------------------------------------------------
def check_device(name: str, what: str = "--device") -> str:
    """A --device value known valid (auto, cpu or cuda), without importing torch (scripted policies never need
    it); ValueError naming the valid values otherwise."""
    if name not in DEVICES:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(DEVICES)} (auto = cuda when a GPU is "
                         "available, else cpu)")
    return name


def resolve_device(name: str, what: str = "--device"):
    """The torch.device a --device value names: auto = cuda when torch.cuda.is_available(), else cpu. A ValueError
    for an unknown name, and for cuda when torch sees no GPU (a CPU-only torch build, no driver, or
    CUDA_VISIBLE_DEVICES empty), so the run fails before its work rather than at its first tensor."""
    import torch

    check_device(name, what)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a build without CUDA")
        raise ValueError(f"{what} cuda: no GPU is available to torch ({build}); use {what} cpu, or {what} auto "
                         "(cuda where a GPU is present, else cpu)")
    return torch.device(name)


def on_cpu(obj):
    """obj with every tensor inside its dicts, lists and tuples moved to the CPU (CPU tensors are returned as they
    are, no copy), so a checkpoint written on a GPU loads on a machine without one and `torch.load` needs no
    map_location."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        moved = {k: on_cpu(v) for k, v in obj.items()}
        if all(moved[k] is v for k, v in obj.items()):
            return obj  # all on the CPU already: the very object, so what is saved does not change
        out = type(obj)(moved)
        if hasattr(obj, "_metadata"):  # a module state_dict's version record (load_state_dict reads it)
            out._metadata = obj._metadata
        return out
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        moved = [on_cpu(v) for v in obj]
        return obj if all(a is b for a, b in zip(moved, obj)) else type(obj)(moved)
    return obj


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
