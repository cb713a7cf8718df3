"""rl4vla: RL fine-tuning of vision-language-action policies and a generalization benchmark."""

__version__ = "0.1.0"
