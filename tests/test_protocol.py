"""The seed split stays apart: demonstrations, in-training evaluation, RL episodes and the study's final
evaluation each draw their episodes with their own seed, for every preset, and every evaluation samples at the
one evaluation temperature."""

from rl4vla import protocol as P
from rl4vla.algos.rl import PRESETS as RL_PRESETS
from rl4vla.algos.rl import RLConfig
from rl4vla.bench.conditions import CONDITIONS, sample_episode
from rl4vla.config import CollectConfig, EvalConfig
from rl4vla.eval.evaluator import run_episodes
from rl4vla.study import PRESETS as STUDY_PRESETS
from rl4vla.study import StudyConfig


def test_the_seeds_of_the_four_uses_differ():
    assert len(set(P.RESERVED_SEEDS)) == 3
    assert (P.DEMO_SEED, P.TRAIN_EVAL_SEED, P.RL_EPISODE_SEED) == P.RESERVED_SEEDS
    assert not set(P.STUDY_EVAL_SEEDS) & set(P.RESERVED_SEEDS)
    assert len(set(P.STUDY_EVAL_SEEDS)) == len(P.STUDY_EVAL_SEEDS)


def test_the_defaults_use_the_protocol():
    assert CollectConfig().seed == P.DEMO_SEED
    assert RLConfig().episode_seed == P.RL_EPISODE_SEED
    assert EvalConfig().temperature == P.EVAL_TEMPERATURE
    assert run_episodes.__defaults__[0] == P.EVAL_TEMPERATURE
    assert StudyConfig().seed == P.DEMO_SEED and StudyConfig().eval_seeds == P.STUDY_EVAL_SEEDS


def test_every_preset_keeps_the_split():
    """The study's demos use its --seed; its final evaluation must avoid that and the trainers' seeds."""
    for name, cfg in {"default": StudyConfig(), **STUDY_PRESETS}.items():
        reserved = {cfg.seed, P.TRAIN_EVAL_SEED, P.RL_EPISODE_SEED}
        assert not set(cfg.eval_seeds) & reserved, f"study preset {name}: eval seeds {cfg.eval_seeds} hit {reserved}"
    for algo, presets in RL_PRESETS.items():
        for name, cfg in presets.items():
            assert cfg.episode_seed not in (P.DEMO_SEED, P.TRAIN_EVAL_SEED, *P.STUDY_EVAL_SEEDS), (algo, name)


def test_different_seeds_give_unrelated_streams():
    """Apart by seed means apart by episode, whatever the count: the episode generator is seeded with
    (condition, seed, index), so the same index under two seeds is a different draw."""
    cond = CONDITIONS["in-distribution"]
    seeds = (*P.RESERVED_SEEDS, *P.STUDY_EVAL_SEEDS)
    for index in (0, 1, 7):
        drawn = {repr({k: v for k, v in sample_episode(cond, s, index).to_dict().items() if k != "seed"})
                 for s in seeds}
        assert len(drawn) == len(seeds), f"two seeds drew the same episode {index}"
