"""junit.xml: one test case per configuration and check, for CI test-result views."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.results import ERROR, FAIL, SKIPPED, RunResult


def render_junit(result: RunResult) -> str:
    suite_name = str(result.suite.get("name", "suite"))
    root = ET.Element("testsuites", name=f"harness {suite_name}")
    testsuite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(result.checks)),
        failures=str(sum(1 for c in result.checks if c.status == FAIL)),
        errors=str(sum(1 for c in result.checks if c.status == ERROR)),
        skipped=str(sum(1 for c in result.checks if c.status == SKIPPED)),
        timestamp=result.started,
    )
    timings = {c.name: c.timing.get("generate_s", 0.0) for c in result.configs}
    tracebacks = {c.name: c.traceback for c in result.configs}
    for check in result.checks:
        case = ET.SubElement(
            testsuite,
            "testcase",
            classname=f"{suite_name}.{check.config}",
            name=check.check,
            time=f"{timings.get(check.config, 0.0) if check.check == 'runs' else 0.0:.3f}",
        )
        if check.status == FAIL:
            ET.SubElement(case, "failure", message=check.reason, type="threshold").text = check.reason
        elif check.status == ERROR:
            element = ET.SubElement(case, "error", message=check.reason, type="error")
            element.text = tracebacks.get(check.config) or check.reason
        elif check.status == SKIPPED:
            ET.SubElement(case, "skipped", message=check.reason)
        else:  # pass, and xfail: a negative control failing as it must is a passing test
            ET.SubElement(case, "system-out").text = check.reason
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
