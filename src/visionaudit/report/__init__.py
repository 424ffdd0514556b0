"""Renderers: everything here reads a Result (its findings and per-image tables), nothing else."""
from .json import write_json
from .terminal import print_summary

__all__ = ["write_json", "print_summary"]
