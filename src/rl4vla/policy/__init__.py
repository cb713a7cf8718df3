"""Policies: the baselines and `make_policy`, and the small VLA with its tokenizer and encoders. The interface
they implement is the benchmark's (rl4vla.bench.contract)."""
