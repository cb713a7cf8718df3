"""The study's protocol constants: which manifest seed pins which episodes, and the evaluation temperature.

An episode is `sample_episode(condition, seed, index)`, drawn from a generator seeded with (condition, seed,
index), so two different seeds give unrelated episode streams however many episodes each uses. Keeping the
seeds of the four uses apart therefore keeps their episodes apart: RL never trains on, and the final evaluation
never scores, the states that the demonstrations or the in-training curves saw.

Plain constants with no imports, at the bottom of the stack beside config.py, so that the command configs'
defaults, the benchmark and the trainers all read the same numbers.
"""

DEMO_SEED = 0  # `rl4vla collect` and the study's demonstrations (the study's --seed defaults to it)
TRAIN_EVAL_SEED = 1000  # the pinned in-distribution episodes of the SFT and RL in-training evaluations
RL_EPISODE_SEED = 10_000  # the RL trainers' stream of training initial states
STUDY_EVAL_SEEDS = (100, 101, 102)  # the study's final evaluation of every model on all conditions (paper: 3)
RESERVED_SEEDS = (DEMO_SEED, TRAIN_EVAL_SEED, RL_EPISODE_SEED)  # seeds a final evaluation must avoid

EVAL_TEMPERATURE = 0.6  # sampling temperature of every evaluation of a learned policy (the study's choice)
