"""Command line: `rl4vla COMMAND [SUBCOMMAND] --flags`. Each command wires a config to a function."""

from __future__ import annotations

import json
import sys

import tyro

from rl4vla.config import (
    CollectConfig,
    CompareConfig,
    ConditionsConfig,
    EvalConfig,
    RenderConfig,
    ReportConfig,
)


def _eval(args):
    from rl4vla.eval.run import evaluate, format_results

    cfg = tyro.cli(EvalConfig, args=args, prog="rl4vla eval")
    out = evaluate(cfg)
    print(json.dumps(out) if cfg.json else format_results(out))


def _compare(args):
    from rl4vla.eval.compare import compare_results, format_comparison, training_arms

    cfg = tyro.cli(CompareConfig, args=args, prog="rl4vla compare")
    a, b = training_arms(cfg.a.split(","), cfg.b.split(","), cfg.updates)  # run directories: training episodes
    out = compare_results(a, b, test=cfg.test, alpha=cfg.alpha,
                          n_boot=cfg.bootstrap_samples, seed=cfg.bootstrap_seed)
    print(json.dumps(out) if cfg.json else format_comparison(out))


def _report(args):
    from rl4vla.eval.report import report

    written = report(tyro.cli(ReportConfig, args=args, prog="rl4vla report"))
    print(f"wrote {written['report.md']} and {len(written) - 1} more files", file=sys.stderr)


def _render(args):
    from rl4vla.eval.run import render

    render(tyro.cli(RenderConfig, args=args, prog="rl4vla render"))


def _conditions(args):
    from rl4vla.eval.run import list_conditions

    list_conditions(tyro.cli(ConditionsConfig, args=args, prog="rl4vla conditions"))


def _collect(args):
    from rl4vla.data.collect import collect

    collect(tyro.cli(CollectConfig, args=args, prog="rl4vla collect"))


def _pretrained(args):
    from rl4vla.prior import PretrainedConfig, format_pretrained, list_pretrained

    cfg = tyro.cli(PretrainedConfig, args=args, prog="rl4vla pretrained")
    docs = list_pretrained()
    print(json.dumps(docs, indent=1) if cfg.json else format_pretrained(docs))


def _export(args):
    from rl4vla.prior import ExportConfig, export_pretrained

    prov = export_pretrained(tyro.cli(ExportConfig, args=args, prog="rl4vla export"))
    print(json.dumps({k: v for k, v in prov.items() if k != "probe"}, indent=1))


# what each preset is for, shown by `rl4vla train sft --help` and the like
PRESET_HELP = {
    "sft": {"debug": "a tiny VLA for 20 steps (tests)", "warmup": "1,500 steps: the warm-up on its 140 demos",
            "pretrain": "6,000 steps: robot pretraining on the corpus", "sft": "16,000 steps: the SFT baseline"},
    "rl": {"debug": "tiny budgets, every scene in this process (tests)",
           "default": "the study's recipe at the scale of 2 CPU cores"},
    "study": {"debug": "CI, ~1-2 min", "quick": "<= 25 min on 2 cores", "standard": "<= 3 h on 2 cores"},
}


def _with_preset(args: list[str], presets: dict, default: str, prog: str, help_: dict[str, str]):
    """tyro's overridable configs: one subcommand per preset, whose defaults are that preset's values, every field
    still a flag (`rl4vla train sft pretrain --steps 100`); without a preset name the default preset's flags apply
    directly (`rl4vla train sft --steps 100`)."""
    if args and not args[0].startswith("-") and args[0] not in presets:
        raise ValueError(f"unknown preset {args[0]!r}; valid: {', '.join(presets)}")
    if "--preset" in args or any(a.startswith("--preset=") for a in args):
        raise ValueError(f"presets are subcommands now: {prog} NAME [flags], NAME one of {', '.join(presets)}")
    choice = tyro.extras.subcommand_type_from_defaults(presets, help_, prefix_names=False)
    return tyro.cli(choice, default=presets[default], args=args, prog=prog, config=(tyro.conf.CascadeSubcommandArgs,))


def _train_sft(args):
    from rl4vla.algos.sft import PRESETS, train_sft

    cfg = _with_preset(args, PRESETS, "warmup", "rl4vla train sft", PRESET_HELP["sft"])
    print(json.dumps(train_sft(cfg)))


def _train_rl(algo: str):
    def run(args):
        from rl4vla.algos.rl import presets, train_rl

        cfg = _with_preset(args, presets(algo), "default", f"rl4vla train {algo}", PRESET_HELP["rl"])
        if cfg.algo != algo:
            raise ValueError(f"`rl4vla train {algo}` runs {algo}; use `rl4vla train {cfg.algo}` instead of --algo")
        print(json.dumps(train_rl(cfg)))

    return run


def _study(args):
    from rl4vla.study import PRESETS, run_study

    cfg = _with_preset(args, PRESETS, "quick", "rl4vla study", PRESET_HELP["study"])
    try:
        run_study(cfg)
    except KeyboardInterrupt:
        raise RuntimeError(f"interrupted: run the same command again to resume ({cfg.out}/stages.json)") from None
    print(f"study done: report at {cfg.out}/report/report.md (stages in {cfg.out}/stages.json)")


def _bench_policy(args):
    from rl4vla.speed import BenchPolicyConfig, bench_policy

    bench_policy(tyro.cli(BenchPolicyConfig, args=args, prog="rl4vla bench policy"))


def _bench_sim(args):
    from rl4vla.speed import BenchSimConfig, bench_sim

    bench_sim(tyro.cli(BenchSimConfig, args=args, prog="rl4vla bench sim"))


COMMANDS = {
    "study": (_study, "the whole study: demos, SFT, PPO/GRPO/DPO, evaluation, report (resumable)"),
    "eval": (_eval, "evaluate a policy on benchmark conditions"),
    "render": (_render, "record captioned episode videos and a contact sheet"),
    "compare": (_compare, "paired per-condition difference of two results files"),
    "report": (_report, "Markdown/CSV/PNG report of results files (the study's Table 1)"),
    "conditions": (_conditions, "list the 16 generalization conditions"),
    "collect": (_collect, "record scripted-expert demonstrations (HDF5)"),
    "pretrained": (_pretrained, "list the shipped pretrained VLAs (--init pretrained:NAME) and their provenance"),
    "export": (_export, "write a trained VLA as a pretrained folder (safetensors + provenance)"),
    "train": ({"sft": (_train_sft, "supervised fine-tuning on demonstrations"),
               "ppo": (_train_rl("ppo"), "PPO from an SFT checkpoint (the study's recipe)"),
               "grpo": (_train_rl("grpo"), "GRPO: group-normalised returns from shared initial states"),
               "dpo": (_train_rl("dpo"), "trajectory-wise DPO on preference pairs of own rollouts"),
               "fbc": (_train_rl("fbc"), "filtered behaviour cloning on own successes (a yardstick for RL)")},
              "train a policy"),
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
