"""JUnit XML for CI systems (GitLab, Jenkins, GitHub test reporters): findings as test results.

One ``<testsuite name="visionaudit">`` holds one testcase per finding (``classname`` = check id,
``name`` = issue) and one passing testcase per check that ran without a finding (from
``run_info["check_seconds"]``). Findings at or above ``fail_on`` carry a ``<failure>``; a check that
crashed (issue ``check_failed``) carries an ``<error>`` with its traceback; less severe findings pass
and put their message in ``<system-out>``.
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..findings import Finding, Result, Severity

#: Most sample ids listed in one failure's text; the rest are in findings.json.
MAX_LISTED = 50
# Characters XML 1.0 cannot carry (control characters, lone surrogates from undecodable file names).
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FAIL_ON = ("error", "warning", "never")


def write_junit(result: Result, path: str | os.PathLike, *, fail_on: str = "warning") -> Path:
    """Write a JUnit XML file and return its path.

    ``fail_on`` ('error', 'warning' or 'never') is the least severe finding reported as a failure.

    >>> from visionaudit import scan
    >>> path = write_junit(scan("data/"), "out/visionaudit.xml")
    >>> path, path.read_text().count("<failure")          # one failed test case per error or warning finding
    (PosixPath('out/visionaudit.xml'), 23)
    """
    if fail_on not in _FAIL_ON:
        raise ValueError(f"invalid fail_on={fail_on!r}: expected one of {', '.join(_FAIL_ON)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = ET.ElementTree(junit_element(result, fail_on=fail_on))
    ET.indent(tree)
    tmp = path.with_name(path.name + ".tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
    return path


def junit_element(result: Result, *, fail_on: str = "warning") -> ET.Element:
    """The ``<testsuites>`` element :func:`write_junit` writes."""
    floor = Severity(fail_on).rank if fail_on != "never" else None
    seconds = result.run_info.get("check_seconds") or {}
    findings = sorted(result.findings, key=lambda f: -f.severity.rank)
    per_check: dict[str, int] = {}
    for f in findings:
        per_check[f.check] = per_check.get(f.check, 0) + 1

    suite = ET.Element("testsuite", name="visionaudit")
    if result.run_info.get("started_at"):
        suite.set("timestamp", _clean(str(result.run_info["started_at"])))
    props = ET.SubElement(suite, "properties")
    for name, value in (("source", result.dataset_summary.get("source")),
                        ("samples", result.dataset_summary.get("samples")),
                        ("visionaudit_version", result.run_info.get("version")),
                        ("fail_on", fail_on)):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=_clean(str(value)))

    failures = errors = 0
    for f in findings:
        case = ET.SubElement(suite, "testcase", classname=_clean(f.check), name=_clean(f.issue),
                             time=_seconds(seconds.get(f.check), per_check[f.check]))
        if f.issue == "check_failed":
            errors += 1
            el = ET.SubElement(case, "error", type="check_failed", message=_clean(f.message))
            el.text = _clean(str(f.evidence.get("traceback", f.message)))
        elif floor is not None and f.severity.rank >= floor:
            failures += 1
            el = ET.SubElement(case, "failure", type=f.severity.value, message=_clean(f.message))
            el.text = _details(f)
        else:
            ET.SubElement(case, "system-out").text = f"[{f.severity.value}] " + _details(f)
    for check, secs in seconds.items():
        if check not in per_check:
            ET.SubElement(suite, "testcase", classname=_clean(check), name="no findings", time=_seconds(secs, 1))

    total = len(suite.findall("testcase"))
    run_seconds = result.run_info.get("seconds")
    attrs = {"tests": str(total), "failures": str(failures), "errors": str(errors), "skipped": "0",
             "time": _seconds(run_seconds, 1)}
    for k, v in attrs.items():
        suite.set(k, v)
    root = ET.Element("testsuites", name="visionaudit", **{k: v for k, v in attrs.items() if k != "skipped"})
    root.append(suite)
    return root


def _details(f: Finding) -> str:
    lines = [f.message, f"check: {f.check}  issue: {f.issue}  severity: {f.severity.value}  count: {f.count}"]
    if f.groups:
        lines.append(f"groups ({len(f.groups)}):")
        lines += ["  " + ", ".join(map(str, g.get("samples", []))) for g in f.groups[:MAX_LISTED]]
        if len(f.groups) > MAX_LISTED:
            lines.append(f"  ... and {len(f.groups) - MAX_LISTED} more in findings.json")
    elif f.samples:
        listed = f.samples[:MAX_LISTED]
        lines.append(f"samples (worst first{', first %d' % MAX_LISTED if len(f.samples) > MAX_LISTED else ''}):")
        lines += [f"  {s}" + (f"  score={f.scores[s]:.3f}" if s in f.scores else "") for s in listed]
        if len(f.samples) > len(listed):
            lines.append(f"  ... and {len(f.samples) - len(listed)} more in findings.json")
    if f.why:
        lines.append(f"why: {f.why}")
    if f.fix:
        lines.append(f"fix: {f.fix}")
    return _clean("\n".join(lines))


def _seconds(total: object, parts: int) -> str:
    return f"{float(total) / parts:.4f}" if isinstance(total, (int, float)) else "0"


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)
