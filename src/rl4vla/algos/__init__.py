"""Losses and trainers: SFT on demonstrations; PPO, GRPO, DPO (and filtered BC) from rollouts."""
