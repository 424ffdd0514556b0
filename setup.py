"""Build hook for the optional C kernel; all other metadata is in pyproject.toml.

``optional=True``: without a working compiler the install still succeeds and
visionaudit.features.properties falls back to its numpy implementation (same values, slower).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("visionaudit.features._pixelstats", ["src/visionaudit/features/_pixelstats.c"],
                             optional=True)])
