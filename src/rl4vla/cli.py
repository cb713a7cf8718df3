"""Command line: `rl4vla COMMAND [SUBCOMMAND] --flags`. Each command wires a config to a function."""

from __future__ import annotations

import json
import sys

import tyro

from rl4vla.config import BenchSimConfig, CollectConfig, ConditionsConfig, EvalConfig, RenderConfig


def _eval(args):
    from rl4vla.eval.run import evaluate

    evaluate(tyro.cli(EvalConfig, args=args, prog="rl4vla eval"))


def _render(args):
    from rl4vla.eval.run import render

    render(tyro.cli(RenderConfig, args=args, prog="rl4vla render"))


def _conditions(args):
    from rl4vla.eval.run import list_conditions

    list_conditions(tyro.cli(ConditionsConfig, args=args, prog="rl4vla conditions"))


def _collect(args):
    from rl4vla.data.collect import collect

    collect(tyro.cli(CollectConfig, args=args, prog="rl4vla collect"))


def _preset(args: list[str], presets: dict, default: str):
    """The config of the preset named by --preset (flags given explicitly override its fields)."""
    name = default
    for i, a in enumerate(args):
        if a == "--preset" and i + 1 < len(args):
            name = args[i + 1]
        elif a.startswith("--preset="):
            name = a.split("=", 1)[1]
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(presets)}")
    return presets[name]


def _train_sft(args):
    from rl4vla.algos.sft import PRESETS, SFTConfig, train_sft

    cfg = tyro.cli(SFTConfig, default=_preset(args, PRESETS, "warmup"), args=args, prog="rl4vla train sft")
    print(json.dumps(train_sft(cfg)))


def _bench_policy(args):
    from rl4vla.policy.speed import BenchPolicyConfig, bench_policy

    bench_policy(tyro.cli(BenchPolicyConfig, args=args, prog="rl4vla bench policy"))


def _bench_sim(args):
    from rl4vla.bench.speed import bench_sim

    bench_sim(tyro.cli(BenchSimConfig, args=args, prog="rl4vla bench sim"))


COMMANDS = {
    "eval": (_eval, "evaluate a policy on benchmark conditions"),
    "render": (_render, "record captioned episode videos and a contact sheet"),
    "conditions": (_conditions, "list the 16 generalization conditions"),
    "collect": (_collect, "record scripted-expert demonstrations (HDF5)"),
    "train": ({"sft": (_train_sft, "supervised fine-tuning on demonstrations")}, "train a policy"),
    "bench": ({"sim": (_bench_sim, "env steps per second"),
               "policy": (_bench_policy, "VLA inference and training samples per second")}, "speed benchmarks"),
}


def _usage(table: dict, prefix: str) -> str:
    lines = [f"usage: {prefix} COMMAND [--help]", "", "commands:"]
    lines += [f"  {name:10s} {help_}" for name, (_, help_) in table.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    table, prefix = COMMANDS, "rl4vla"
    while True:
        if not argv or argv[0] in ("-h", "--help"):
            print(_usage(table, prefix))
            return 0 if argv else 2
        name = argv.pop(0)
        if name not in table:
            print(f"{prefix}: unknown command {name!r}; valid: {', '.join(table)}", file=sys.stderr)
            return 2
        target = table[name][0]
        prefix = f"{prefix} {name}"
        if isinstance(target, dict):
            table = target
            continue
        try:
            target(argv)
        except (ValueError, RuntimeError) as e:
            print(f"{prefix}: error: {e}", file=sys.stderr)
            return 2
        return 0


if __name__ == "__main__":
    sys.exit(main())
