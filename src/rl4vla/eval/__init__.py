"""Evaluation: run a policy on pinned episodes, results files and their statistics, reports, plots and media."""
