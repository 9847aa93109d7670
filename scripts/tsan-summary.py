#!/usr/bin/env python3
"""Summarises ThreadSanitizer report files (TSAN_OPTIONS log_path=DIR/r: one DIR/r.PID per process).

    scripts/tsan-summary.py DIR

Prints the number of reports, then one line per group: reports are grouped by the pair of the
functions of the first frames in Chorus's own code (Sources/ or Tests/) of the two stacks (the access and the
earlier one it raced with), so one race seen a hundred times is one line. Each group shows its
count, the processes it was seen in, both stacks' top frames (what TSan itself names first: often
an interceptor such as memcpy) and one file to read the whole report in. Swift names are
demangled with swift-demangle when it is on PATH. Exits 0 whatever it finds (the caller decides).
"""
import collections
import os
import re
import shutil
import subprocess
import sys

# A `Mutex.withLock` body: a closure taking the guarded value `inout sending` (or `inout ()`), typed throws.
LOCKED = re.compile(r"(zYuYTXEfU\d*_|tz_tYTXEfU\d*_)$")
FRAME = re.compile(r"^\s+#(\d+) (\S+)(?: (\S+))?")


def demangle(names):
    tool = shutil.which("swift-demangle")
    if not tool or not names:
        return {n: n for n in names}
    out = subprocess.run([tool, "--simplified"], input="\n".join(names), capture_output=True, text=True).stdout
    lines = out.split("\n")
    return {n: (lines[i] if i < len(lines) and lines[i] else n) for i, n in enumerate(names)}


def reports(path):
    """Yields (kind, [stack, stack, ...]) for each report in one log file; a stack is [(function, location)]."""
    kind, stacks, current = None, [], None
    with open(path, errors="replace") as f:
        for line in f:
            # Races are WARNINGs; a crash inside the sanitizer (e.g. "SEGV on unknown address") is
            # an ERROR line, `==PID==ERROR: ThreadSanitizer: ...`, and ends that process's run.
            if line.startswith("WARNING: ThreadSanitizer:") or "ERROR: ThreadSanitizer:" in line:
                if kind:
                    yield kind, stacks
                kind = re.sub(r"\s*\(pid=\d+\)", "", line.split("ThreadSanitizer:", 1)[1]).strip()
                kind = re.sub(r" \(pc 0x.*", "", re.sub(r"address 0x[0-9a-f]+", "address", kind))
                stacks, current = [], None
                continue
            if kind is None:
                continue
            if line.startswith("SUMMARY: ThreadSanitizer") or line.startswith("=================="):
                if line.startswith("SUMMARY"):
                    yield kind, stacks
                    kind = None
                continue
            m = FRAME.match(line)
            if m:
                if m.group(1) == "0":
                    current = []
                    stacks.append(current)
                if current is not None:
                    current.append((m.group(2), m.group(3) or ""))
            elif not line.strip():
                current = None
    if kind:
        yield kind, stacks


def own_frame(stack):
    for function, location in stack:
        if "/Sources/" in location or "/Tests/" in location:
            return function, location
    return stack[0] if stack else ("?", "")


def short(location):
    for marker in ("/Sources/", "/Tests/"):
        if marker in location:
            return location[location.index(marker) + 1:]
    return os.path.basename(location) or location


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    directory = sys.argv[1]
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)) if os.path.isdir(directory) else []
    groups = collections.OrderedDict()
    total = 0
    for path in files:
        process = os.path.basename(path)
        for kind, stacks in reports(path):
            total += 1
            # The access and the earlier access (data races); other kinds have one stack that matters.
            pair = stacks[:2] if "race" in kind else stacks[:1]
            own = [own_frame(s) for s in pair]
            key = (kind, tuple(sorted(f for f, _ in own)))
            g = groups.setdefault(key, {"count": 0, "files": set(), "own": own, "top": [s[0] if s else ("?", "") for s in pair], "example": path})
            g["count"] += 1
            g["files"].add(process)
    names = {n for g in groups.values() for f, _ in g["own"] + g["top"] for n in [f]}
    readable = demangle(sorted(names))
    print(f"ThreadSanitizer: {total} report(s) in {len(files)} file(s), {len(groups)} group(s)")
    for i, ((kind, _), g) in enumerate(sorted(groups.items(), key=lambda kv: -kv[1]["count"]), 1):
        locked = all(LOCKED.search(f) for f, _ in g["own"])
        note = "  [both accesses inside withLock: the Mutex false positive, see tsan-suppressions.txt]" if locked else ""
        print(f"\n[{i}] {g['count']} x {kind} (in {len(g['files'])} process(es)), e.g. {g['example']}{note}")
        for label, (function, location), (top, _) in zip(("access", "earlier"), g["own"], g["top"]):
            print(f"    {label:8} {short(location)}  {readable.get(function, function)[:160]}")
            if top != function:
                print(f"    {'':8} top frame: {readable.get(top, top)[:160]}")


if __name__ == "__main__":
    main()
