"""Demonstration datasets: the HDF5 format (`demos`) and the scripted-expert `collect` command."""
