"""Renderers: everything here reads a Result (its findings and per-image tables), nothing else."""
from .html import write_html
from .json import write_json
from .junit import write_junit
from .terminal import print_summary

__all__ = ["write_json", "write_html", "write_junit", "print_summary"]
