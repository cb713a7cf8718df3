"""Demonstration datasets (and later preference pairs)."""
