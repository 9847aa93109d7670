#!/usr/bin/env python3
"""Renders scripts/bench-chart.py's SVG from Tests/clients/fixtures/bench-results.jsonl and checks
it: well-formed XML with an <svg> root, one bar per server and scenario in each panel, the median of
repeated runs, bar heights in proportion to the values, failed and non-fan-out lines skipped.

Prints "OK bench-chart" and exits 0 on success; prints the failure and exits 1 otherwise.
"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SVG = "{http://www.w3.org/2000/svg}"


def fail(msg):
    print(f"FAIL bench-chart: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def main():
    fixture = os.path.join(HERE, "fixtures", "bench-results.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "chart.svg")
        run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench-chart.py"), fixture, "-o", out,
                              "--title", "fixture <&> title"], capture_output=True, text=True)
        check(run.returncode == 0, f"exit {run.returncode}: {run.stderr}")
        check("6 runs" in run.stdout, f"the failed and connect lines were not skipped: {run.stdout}")
        try:
            root = ET.parse(out).getroot()
        except ET.ParseError as e:
            fail(f"not well-formed XML: {e}")
        empty = os.path.join(tmp, "empty.jsonl")
        open(empty, "w").close()
        nothing = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench-chart.py"), empty, "-o", out + "2"],
                                 capture_output=True, text=True)
        check(nothing.returncode != 0 and not os.path.exists(out + "2"), "no results must fail and write nothing")

    check(root.tag == SVG + "svg", f"root is {root.tag}")
    check(float(root.get("width")) > 0 and float(root.get("height")) > 0, "no size")
    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    check("fixture <&> title" in texts, "title missing or badly escaped")
    check(any("deliveries per second" in t for t in texts) and any("CPU µs per delivery" in t for t in texts), "panel titles")
    check("chorus" in texts and "node-ws" in texts, f"legend: {texts}")
    check(texts.count("window 16") == 2 and texts.count("window 1") == 2 and texts.count("64 B") == 4,
          "scenario labels (once per panel)")
    check("10k receivers" not in texts, "the receivers every scenario shares belong in the title, not each label")

    bars = [r for r in root.iter(SVG + "rect") if r.get("class") == "bar"]
    # 2 servers x 2 scenarios x 2 panels.
    check(len(bars) == 8, f"{len(bars)} bars")
    values = {}
    for bar in bars:
        values.setdefault(bar.get("data-server"), []).append((float(bar.get("data-value")), float(bar.get("height"))))
    chorus, node = values["chorus"], values["node-ws"]
    # Deliveries panel first: chorus 64 B window 16 is the median of three runs.
    check(chorus[0][0] == 2600000.0, f"median deliveries/s: {chorus[0]}")
    check(chorus[2][0] == 0.374, f"median µs per delivery: {chorus[2]}")
    check(node[0][0] == 108750.0, f"the failed node-ws run was not skipped: {node[0]}")
    # Within a panel, heights are in proportion to the values.
    ratio = chorus[0][1] / node[0][1]
    check(abs(ratio - 2600000.0 / 108750.0) < 0.5, f"height ratio {ratio}")
    check(all(h > 0 for _, h in chorus + node), "a bar without height")
    print("OK bench-chart")


if __name__ == "__main__":
    main()
