"""Losses and trainers: SFT (and later PPO, GRPO, DPO)."""
