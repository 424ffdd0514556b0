"""The check registry: the built-in checks, checks registered with :func:`register`, and plugins.

A third-party package adds checks without touching visionaudit, in either of two ways:

- it decorates its :class:`~visionaudit.checks.base.Check` subclasses with :func:`register` and the
  user imports that module before the run (the Python API), or
- it names them in its packaging metadata under the ``visionaudit.checks`` entry-point group, and every
  run (CLI or API) finds them, with nothing for the user to do but install the package::

      # pyproject.toml of the plugin package
      [project.entry-points."visionaudit.checks"]
      tiny_images = "acme_checks:TinyImages"     # a Check subclass, or a module that calls register()

A registered check runs in the suites its ``suites`` attribute names (``("scan",)`` by default) on
datasets of the tasks its ``tasks`` attribute names (all when empty); its findings, scores and report
section are those of any built-in check. ``docs/plugins.md`` has a complete example.
"""
from __future__ import annotations

import re
import warnings
from typing import Any

from .base import Check

#: The entry-point group plugins register their checks under.
ENTRY_POINT_GROUP = "visionaudit.checks"

#: Every known check by id, built-ins first in their run order, then registered ones.
REGISTRY: dict[str, type[Check]] = {}

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_plugins_loaded = False


def register(cls: type[Check]) -> type[Check]:
    """Add a check class to the registry (a class decorator); returns the class unchanged.

    Raises TypeError or ValueError naming the class when it is not a complete check: a
    :class:`Check` subclass with a dotted lower-case ``id`` (``family.name``), a ``family``, a
    ``title``, ``why`` and ``fix`` texts and its own ``run``; or when its id is taken by another class.
    """
    where = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)!s}"
    if not (isinstance(cls, type) and issubclass(cls, Check)):
        raise TypeError(f"{where}: register() takes a subclass of visionaudit.checks.Check")
    cid = getattr(cls, "id", None)
    if not isinstance(cid, str) or not _ID.match(cid):
        raise ValueError(f"{where}: id must be a dotted lower-case name such as 'acme.tiny_images', got {cid!r}")
    for attr in ("family", "title", "why", "fix"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr).strip():
            raise ValueError(f"{where} ({cid}): {attr!r} must be a non-empty string")
    if cls.run is Check.run:
        raise ValueError(f"{where} ({cid}): a check implements run(ctx) -> CheckOutput")
    suites = getattr(cls, "suites", ())
    if isinstance(suites, str) or not suites or not all(isinstance(s, str) for s in suites):
        raise ValueError(f"{where} ({cid}): suites must be a non-empty tuple of suite names, got {suites!r}")
    known = REGISTRY.get(cid)
    if known is not None and known is not cls:
        raise ValueError(f"{where}: check id {cid!r} is already taken by {known.__module__}.{known.__qualname__}")
    REGISTRY[cid] = cls
    return cls


def load_plugins() -> list[str]:
    """Import the ``visionaudit.checks`` entry points of the installed packages (once per process)
    and register what they name; returns the ids registered by this call.

    A plugin that fails to load is skipped with a warning naming the entry point and the error, so a
    broken third-party package cannot stop the built-in checks from running.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return []
    _plugins_loaded = True
    from importlib.metadata import entry_points

    before = set(REGISTRY)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj: Any = ep.load()
            if isinstance(obj, type):
                register(obj)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            warnings.warn(f"visionaudit plugin {ep.name!r} ({ep.value}) was not loaded: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
    return [cid for cid in REGISTRY if cid not in before]


def registry() -> dict[str, type[Check]]:
    """Every check: built-in, registered and (loaded on first call) installed plugins."""
    load_plugins()
    return REGISTRY
