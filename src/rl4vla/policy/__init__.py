"""Policies: the common act/evaluate interface, the baselines, and the small VLA with its tokenizer and encoders."""
