"""Results files, paired comparison and the report: synthetic results (no simulator) plus one tiny real eval."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from rl4vla.bench.conditions import BUILTIN, manifest_hash, read_manifest
from rl4vla.cli import main
from rl4vla.eval.compare import compare_results
from rl4vla.eval.paper import PAPER_TABLE1, paper_summary
from rl4vla.eval.report import write_report
from rl4vla.eval.results import dimension_summary, load_results, make_results, write_results
from rl4vla.eval.run import eval_episodes

NAMES = [c.name for c in BUILTIN]


def synthetic_pair(seeds=(0, 1), n=8):
    """A and B on the same 16 x len(seeds) x n episodes: equal everywhere except unseen-init-pose (A 0 %, B 100 %)."""
    eps = eval_episodes(NAMES, seeds, n)  # not "all": other tests may register extra conditions
    rng = np.random.default_rng(0)
    a = rng.random(len(eps)) < 0.6
    b = a.copy()
    pose = np.array([e.condition == "unseen-init-pose" for e in eps])
    a[pose], b[pose] = False, True
    ra = make_results(eps, a, a, policy="sft-model", label="sft")
    rb = make_results(eps, b, b, policy="ppo-model", label="ppo")
    return eps, ra, rb


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("results")
    eps, ra, rb = synthetic_pair()
    return eps, write_results(d / "a.json", ra), write_results(d / "b.json", rb)


def test_seeds_concatenate_into_one_manifest():
    one, two = eval_episodes(["in-distribution", "unseen-table"], (0,), 3), eval_episodes(
        ["in-distribution", "unseen-table"], (0, 1), 3)
    assert two[:6] == one and {e.seed for e in two[6:]} == {1}
    with pytest.raises(ValueError, match="repeats"):
        eval_episodes(["in-distribution"], (0, 0), 1)


def test_in_distribution_may_get_more_episodes_than_the_other_conditions():
    names = ["in-distribution", "unseen-table"]
    more = eval_episodes(names, (0, 1), 2, in_distribution_episodes=5)
    per = [(e.seed, e.condition) for e in more]
    assert per == [(s, c) for s in (0, 1) for c, k in (("in-distribution", 5), ("unseen-table", 2)) for _ in range(k)]
    plain = eval_episodes(names, (0,), 2)
    assert more[:2] == plain[:2] and more[5:7] == plain[2:]  # the same pinned episodes, more of them
    assert eval_episodes(["unseen-table"], (0,), 2, 5) == eval_episodes(["unseen-table"], (0,), 2)
    with pytest.raises(ValueError, match="in-distribution-episodes must be >= 0"):
        eval_episodes(names, (0,), 2, -1)


def test_results_round_trip_keeps_hash_and_outcomes(pair):
    eps, pa, _ = pair
    doc = load_results(pa)
    assert doc["manifest_hash"] == manifest_hash(eps)
    assert doc["outcomes"]["keys"][0] == f"{eps[0].condition}:{eps[0].seed}:{eps[0].index}"
    assert len(doc["outcomes"]["success"]) == len(eps) == doc["num_episodes"]
    assert list(doc["conditions"]) == NAMES and doc["seeds"] == [0, 1]
    row = doc["conditions"]["unseen-init-pose"]
    assert (row["successes"], row["episodes"], row["per_seed"]) == (0, 16, {"0": 0.0, "1": 0.0})
    assert row["ci95"] == pytest.approx([0.0, 1.96**2 / (16 + 1.96**2)])  # Wilson 0/n: [0, z^2 / (n + z^2)]
    assert doc["versions"]["rl4vla"] and doc["versions"]["numpy"] == np.__version__
    # a second write of the loaded document is byte-identical
    again = write_results(pa.with_name("again.json"), doc)
    assert again.read_text() == pa.read_text()


def test_dimension_averages_and_retention():
    conds = {"in-distribution": {"dimension": "-", "success_rate": 0.8},
             "unseen-table": {"dimension": "vision", "success_rate": 0.6},
             "dynamic-noise-weak": {"dimension": "vision", "success_rate": 0.4},
             "unseen-position": {"dimension": "execution", "success_rate": 0.2}}
    ind, dims = dimension_summary(conds)
    assert ind == 0.8 and list(dims) == ["vision", "execution"]
    assert dims["vision"]["success"] == pytest.approx(0.5) and dims["vision"]["retention"] == pytest.approx(0.625)
    conds["in-distribution"]["success_rate"] = 0.0
    assert dimension_summary(conds)[1]["vision"]["retention"] is None
    del conds["in-distribution"]
    assert dimension_summary(conds)[0] is None
    # the paper's own numbers: RL keeps more of its in-distribution success on execution than SFT
    sft, ppo = paper_summary("SFT-16k"), paper_summary("PPO")
    assert sft["in_distribution"] == PAPER_TABLE1["in-distribution"][0]
    assert ppo["dimensions"]["execution"]["retention"] > sft["dimensions"]["execution"]["retention"] + 0.3


def test_load_results_names_what_is_wrong(tmp_path, pair):
    _, pa, _ = pair
    doc = json.loads(pa.read_text())
    doc["conditions"]["unseen-table"]["successes"] += 1
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="unseen-table.*does not match its outcomes"):
        load_results(tmp_path / "tampered.json")
    (tmp_path / "old.json").write_text(json.dumps({"policy": "noop", "seed": 0, "conditions": {}}))
    with pytest.raises(ValueError, match="older"):
        load_results(tmp_path / "old.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable results file"):
        load_results(tmp_path / "junk.json")


def test_compare_finds_the_constructed_difference_and_nothing_else(pair):
    _, pa, pb = pair
    cmp = compare_results(pa, pb)
    pose = cmp["conditions"]["unseen-init-pose"]
    assert (pose["diff"], pose["b_only"], pose["a_only"]) == (1.0, 16, 0)
    assert pose["significant"] and pose["p"] == pytest.approx(2 / 2**16)
    others = [r for n, r in cmp["conditions"].items() if n not in ("unseen-init-pose", "all")]
    assert len(others) == 15 and all(r["diff"] == 0 and r["p"] == 1.0 and not r["significant"] for r in others)
    assert cmp["dimensions"]["execution"]["diff"] == pytest.approx(1 / 3)
    assert cmp["dimensions"]["execution"]["significant"] and not cmp["dimensions"]["vision"]["significant"]
    boot = compare_results(pa, pb, test="bootstrap", n_boot=2000)
    assert boot["conditions"]["unseen-init-pose"]["significant"]
    assert boot == compare_results(pa, pb, test="bootstrap", n_boot=2000)  # seeded


def test_compare_refuses_different_manifests(tmp_path, pair, capsys):
    _, pa, _ = pair
    eps = eval_episodes(NAMES, (5,), 2)
    other = write_results(tmp_path / "other.json", make_results(eps, [True] * len(eps), policy="noop"))
    with pytest.raises(ValueError, match="manifest hash"):
        compare_results(pa, other)
    assert main(["compare", str(pa), str(other)]) == 2
    assert "manifest hash" in capsys.readouterr().err


def test_compare_pools_several_runs_of_each_arm_episode_by_episode(tmp_path, capsys):
    """Runs of an arm (training seeds) are pooled episode by episode on 32 in-distribution episodes.
    Three seeds of B each win 2 different episodes over the matching seed of A: six independent wins,
    p 2/2^6 as for six discordant pairs. Three seeds of B that win the same 2 episodes over one run of A
    (the starting checkpoint, evaluated once) are weaker evidence: A's run counts once, and on each of those
    episodes B holds all 3 of the 3 successes of 4 runs with chance 1/4, so p = 2 * (1/4)^2 = 1/8, where
    pooling pairs with A's run repeated would count 6 to 0."""
    eps = eval_episodes(["in-distribution"], (0,), 32)
    base = np.zeros(32, bool)
    base[20:] = True  # 12 episodes every run solves
    files = {}
    for s in range(3):
        wins = np.zeros(32, bool)
        wins[2 * s:2 * s + 2] = True  # seed s of B wins episodes 2s and 2s+1
        for arm, out in (("a", base), ("b", base | wins), ("same", base | (np.arange(32) < 2))):
            files[arm, s] = write_results(tmp_path / f"{arm}{s}.json",
                                          make_results(eps, out, label=f"{arm}-seed{s}", policy=arm))
    one = compare_results(files["a", 0], files["b", 0])["conditions"]["all"]
    assert (one["b_only"], one["a_only"], one["p"]) == (2, 0, 0.5)
    pooled = compare_results([files["a", s] for s in range(3)], [files["b", s] for s in range(3)])
    row = pooled["conditions"]["all"]
    assert (row["n"], row["b_only"], row["a_only"]) == (32, 6, 0) and row["p"] == pytest.approx(2 / 2**6)
    assert pooled["runs"] == [3, 3] and pooled["a"] == "a-seed0 + a-seed1 + a-seed2"
    assert row["diff"] == pytest.approx(6 / 96)
    shared = compare_results(files["a", 0], [files["same", s] for s in range(3)])["conditions"]["all"]
    assert (shared["n"], shared["b_only"], shared["p"]) == (32, 2, pytest.approx(1 / 8))
    assert shared["diff"] == pytest.approx(2 / 32)
    with pytest.raises(ValueError, match="A: a results file is listed twice"):
        compare_results([files["a", 0], files["a", 0]], [files["b", 0]])
    argv = ["compare", str(files["a", 0]), ",".join(str(files["same", s]) for s in range(3))]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 runs of A and 3 of B, stratified by episode" in out and "B more" in out


def test_compare_cli_json(pair, capsys):
    _, pa, pb = pair
    assert main(["compare", str(pa), str(pb), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["conditions"]["unseen-init-pose"]["significant"] and (out["a"], out["b"]) == ("sft", "ppo")


def test_report_has_table1_csv_and_charts(tmp_path, pair):
    _, pa, pb = pair
    run = tmp_path / "run_ppo"
    run.mkdir()
    run.joinpath("metrics.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"step": 1, "losses/ppo": 0.5, "losses/value": 1.0, "train/env_steps": 640},
        {"step": 1, "eval/success": 0.2}, {"step": 2, "losses/ppo": 0.4, "train/env_steps": 1280},
        {"step": 2, "eval/success": 0.5}]) + "\n")
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"stages": [{"name": "sft", "env_steps": 0, "wall_s": 3600, "cpus": 2},
                                            {"name": "ppo", "env_steps": 10000, "wall_s": 1800, "cpus": 2}]}))
    media = tmp_path / "media_ppo"
    media.mkdir()
    Image.new("RGB", (8, 8)).save(media / "contact_sheet.png")
    video = {"file": "000_in-distribution_carrot_success.mp4", "condition": "in-distribution", "success": True}
    media.joinpath("media.json").write_text(json.dumps({"label": "ppo", "contact_sheet": "contact_sheet.png",
                                                        "videos": [video]}))
    out = tmp_path / "report"
    written = write_report([pa, pb], out, runs=[run], costs=costs, media=[media])

    md = (out / "report.md").read_text()
    table = md.split("## Table 1")[1].split("## Per dimension")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")][2:]  # past header and rule
    names = [r.split(" | ")[1] for r in rows if not r.split(" | ")[1].startswith("*")]
    order = {"-": 0, "vision": 1, "semantics": 2, "execution": 3}
    assert sorted(names) == sorted(NAMES) and names[0] == "in-distribution"
    assert [order[r.split(" | ")[0][2:]] for r in rows] == sorted(order[r.split(" | ")[0][2:]] for r in rows)
    pose = next(r for r in rows if " unseen-init-pose " in r)
    assert "**+1.000**" in pose and "0.797" in pose  # significant delta marked; paper PPO beside ours
    assert "**" not in next(r for r in rows if " unseen-table " in r).split(" | ")[4]
    assert "*retention*" in table and "| ppo | " in md
    assert "| **total** | 10000 | 1:30:00 |  | 3.00 |" in md  # CPU-hours: (3600 + 1800) s x 2 CPUs / 3600
    assert "../media_ppo/contact_sheet.png" in md and "000_in-distribution_carrot_success.mp4" in md

    with open(out / "table.csv") as f:
        recs = list(csv.DictReader(f))
    assert len(recs) == 16 and [r["condition"] for r in recs] == names
    pose = next(r for r in recs if r["condition"] == "unseen-init-pose")
    assert (float(pose["sft"]), float(pose["ppo"]), pose["significant_ppo"]) == (0.0, 1.0, "1")
    for png in ("bars_vision.png", "bars_semantics.png", "bars_execution.png", "bars_dimensions.png",
                "curves_success.png", "curves_losses.png"):
        assert written[png].exists() and Image.open(written[png]).size[0] > 100, png


def test_report_pools_the_runs_of_a_policy(tmp_path, pair, capsys):
    """PPO as two runs (comma-separated): the second fails unseen-init-pose where the first always succeeds.
    PPO's cells count both runs' 32 episodes (0.5 there), and its delta over SFT is tested episode by episode:
    on each of the 16 episodes PPO holds 1 of the 1 success among 3 runs with chance 2/3, so p = 2 (2/3)^16."""
    eps, pa, pb = pair
    doc = json.loads(pb.read_text())
    pose = [i for i, e in enumerate(eps) if e.condition == "unseen-init-pose"]
    success = np.array(doc["outcomes"]["success"], bool)
    success[pose] = False
    pb2 = write_results(tmp_path / "b2.json", make_results(eps, success, success, policy="ppo-model", label="ppo2"))
    out = tmp_path / "report"
    assert main(["report", str(pa), f"{pb},{pb2}", "--out", str(out), "--labels", "sft", "ppo", "--no-paper"]) == 0
    with open(out / "table.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["condition"] == "unseen-init-pose")
    assert (float(row["ppo"]), int(row["ppo_episodes"]), row["significant_ppo"]) == (0.5, 32, "1")
    assert float(row["p_ppo"]) == pytest.approx(2 * (2 / 3) ** 16, rel=1e-3)
    md = (out / "report.md").read_text()
    assert "Several runs (training seeds) of ppo (2 runs)" in md
    assert "| ppo: ppo | `ppo-model` |" in md and "| ppo: ppo2 | `ppo-model` |" in md
    assert main(["report", str(pa), f"{pb},{pb}", "--out", str(tmp_path / "r2"), "--no-paper"]) == 2
    assert "listed twice" in capsys.readouterr().err


def test_report_cli_rejects_label_count_mismatch(tmp_path, pair, capsys):
    _, pa, pb = pair
    assert main(["report", str(pa), str(pb), "--out", str(tmp_path), "--labels", "only-one", "--no-paper"]) == 2
    assert "labels" in capsys.readouterr().err


def test_tiny_real_eval_writes_results_that_load_and_replay(tmp_path, capsys):
    args = ["eval", "--policy", "noop", "--conditions", "in-distribution", "unseen-table", "--episodes", "2",
            "--seeds", "0", "1", "--env.workers", "0", "--env.num-envs", "4", "--env.image-size", "32", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "r.json"), "--save-manifest", str(tmp_path / "m.json")]) == 0
    assert "in-distribution" in capsys.readouterr().out  # the table
    doc = load_results(tmp_path / "r.json")
    eps = eval_episodes(["in-distribution", "unseen-table"], (0, 1), 2)
    assert doc["manifest_hash"] == manifest_hash(eps) == manifest_hash(read_manifest(str(tmp_path / "m.json")))
    assert doc["outcomes"]["success"] == [0] * 8 and doc["seeds"] == [0, 1]
    assert doc["conditions"]["unseen-table"]["dimension"] == "vision" and doc["wall_s"] > 0
    assert main(["eval", "--policy", "noop", "--manifest", str(tmp_path / "m.json"), "--env.workers", "0",
                 "--env.image-size", "32", "--no-progress", "--out", str(tmp_path / "r2.json")]) == 0
    assert load_results(tmp_path / "r2.json")["outcomes"] == doc["outcomes"]


def test_rollout_success_panel_is_a_moving_average_against_env_steps(tmp_path):
    from rl4vla.eval.plots import _figure, _rollout_success, training_curves

    succ = [0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    rows = [{"step": 10 * (i + 1), "train/env_steps": 10 * (i + 1), "train/success": s} for i, s in enumerate(succ)]
    rows.append({"step": 60, "eval/success": 0.5})
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ax = _figure(4, 3).add_subplot(1, 1, 1)
    _rollout_success(ax, [rows], ["run"], smooth=3)
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_xdata(), [30, 40, 50, 60])
    np.testing.assert_allclose(line.get_ydata(), [1 / 3, 2 / 3, 2 / 3, 1.0])
    ax = _figure(4, 3).add_subplot(1, 1, 1)
    _rollout_success(ax, [rows[:2]], ["short"], smooth=3)  # shorter than the window: one point, their mean
    np.testing.assert_allclose(ax.lines[0].get_xydata(), [[20, 0.5]])
    widths = []
    for name, keep in (("both", lambda r: True), ("eval", lambda r: "train/success" not in r),
                       ("rollouts", lambda r: "eval/success" not in r)):
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows if keep(r)) + "\n")
        (png,) = [p for p in training_curves([run], tmp_path / name) if p.name == "curves_success.png"]
        widths.append(Image.open(png).size[0])
    # 3 panels (evaluations vs step and vs env steps, rollouts); 1 (evaluations only, no env steps logged then);
    # 1 (rollouts only: a run without evaluations still gets its curve)
    assert widths[0] > 2.5 * widths[2] and widths[1] == widths[2]


def test_repeated_evaluations_of_a_start_pool_and_a_copy_of_one_is_refused(tmp_path, monkeypatch):
    """`eval --sample-seed` seeds the policy's sampling (default: the first episode's seed) and records it; two
    evaluations of one checkpoint with other sample seeds are two runs of it, while a copy of one is refused."""
    import tyro

    from rl4vla.config import EvalConfig
    from rl4vla.eval import run as eval_run

    seen = []
    real = eval_run.seeded_policy
    monkeypatch.setattr(eval_run, "seeded_policy", lambda spec, seed, device: seen.append(seed) or real(spec, seed,
                                                                                                        device))
    base = ["--policy", "noop", "--episodes", "1", "--seeds", "3", "--env.workers", "0", "--env.num-envs", "1",
            "--env.image-size", "32", "--no-progress"]
    docs = [eval_run.evaluate(tyro.cli(EvalConfig, args=[*base, *extra])) for extra in ([], ["--sample-seed", "7"])]
    assert seen == [3, 7] and [d["settings"]["sample_seed"] for d in docs] == [3, 7]
    with pytest.raises(ValueError, match="--sample-seed -1 is out of range"):
        eval_run.evaluate(tyro.cli(EvalConfig, args=[*base, "--sample-seed", "-1"]))

    eps = eval_episodes(["in-distribution"], (0,), 16)
    start = np.arange(16) < 4
    ckpt = {"spec": "runs/w/model.pt", "kind": "checkpoint", "sha256": "ab" * 32}
    files = [write_results(tmp_path / f"w{k}.json", make_results(eps, start, policy=ckpt, label="w",
                                                                 settings={"temperature": 0.6, "sample_seed": k}))
             for k in (0, 1)]
    ppo = write_results(tmp_path / "ppo.json", make_results(eps, np.arange(16) < 8, policy="ppo-model"))
    row = compare_results(files, ppo)["conditions"]["all"]
    assert row["a"] == pytest.approx(0.25) and row["b_only"] == 4
    copy = tmp_path / "copy.json"
    copy.write_text(files[0].read_text())
    with pytest.raises(ValueError, match="are the same evaluation .* sample seed 0"):
        compare_results([files[0], copy], ppo)
    old = make_results(eps, start, policy=ckpt, label="w", settings={"temperature": 0.6})  # before --sample-seed:
    with pytest.raises(ValueError, match="same evaluation"):  # its sampling was seeded by the first episode's seed
        compare_results([old, files[0]], ppo)
