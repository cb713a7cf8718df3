"""Policies: the common act/evaluate interface, baselines and (later) VLAs."""
