#!/usr/bin/env python3
"""Turns chorus-bench JSON results into one SVG chart: deliveries/s and server CPU per delivery,
per server and scenario, in two panels side by side (standard library only, no plotting package).

    scripts/bench-chart.py RESULTS.jsonl [MORE.jsonl ...] -o chart.svg [--title "..."] [--servers chorus,node-ws]

Input: the lines `scripts/bench-fanout.sh` appends to bench-results/fanout.jsonl and
`scripts/bench-compare.sh` collects per run (one `chorus-bench --json` object each, with the
`server` field the script adds). Lines of other modes (connect) or failed runs (exit_code != 0,
no deliveries) are skipped. Several runs of one server and scenario are reduced to their median,
and the chart says how many runs each bar stands for.
"""
import argparse
import json
import math
import statistics
import sys
from xml.sax.saxutils import escape

PALETTE = ["#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#c62828", "#00838f", "#5d4037"]
WIDTH, PANEL_HEIGHT = 1000, 300
MARGIN_LEFT, MARGIN_RIGHT, PANEL_GAP = 70, 20, 70
TOP = 70  # title and panel titles above the plots


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"bench-chart: {path}:{n}: not JSON: {e}")
                if row.get("mode") not in ("fanout", "socketio") or "server" not in row:
                    continue
                if row.get("exit_code", 0) != 0 or not row.get("deliveries_per_s"):
                    continue
                rows.append(row)
    return rows


def scenario_key(row):
    load_mode = ("w", row["window"]) if row.get("window") else ("r", row.get("rate", 0))
    return (row["mode"], row["receivers"], row["size"], load_mode, bool(row.get("deflate")))


def scenario_label(key):
    """Three lines: how many receivers, the size, the load (the caller drops the first when every
    scenario has the same receivers)."""
    mode, receivers, size, (kind, amount), deflate = key
    count = f"{receivers // 1000}k" if receivers >= 1000 and receivers % 1000 == 0 else str(receivers)
    size_text = f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"
    load_text = f"window {amount}" if kind == "w" else f"{amount:g}/s"
    second = [load_text] + (["deflate"] if deflate else []) + (["Socket.IO"] if mode == "socketio" else [])
    return [f"{count} receivers", size_text, " · ".join(second)]


def short(value):
    """2,600,000 -> 2.6M; 108,750 -> 109k; 0.374 -> 0.374; 9.16 -> 9.16."""
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def axis(maximum):
    """(step, top): a step of 1, 2, 2.5 or 5 times a power of ten giving at most 5 intervals up to
    the first multiple of it at or above `maximum`."""
    if maximum <= 0:
        return 0.25, 1.0
    raw = maximum / 5
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return step, step * math.ceil(maximum / step - 1e-9)


def tick_text(value):
    return short(value) if value >= 1e3 else f"{value:g}"


def summarise(rows, servers):
    """{scenario: {server: (median deliveries/s, median µs per delivery or None, runs)}}."""
    groups = {}
    for row in rows:
        groups.setdefault(scenario_key(row), {}).setdefault(row["server"], []).append(row)
    table = {}
    for key, by_server in groups.items():
        table[key] = {}
        for server in servers:
            runs = by_server.get(server)
            if not runs:
                continue
            cpu = [r["server_cpu_us_per_delivery"] for r in runs if r.get("server_cpu_us_per_delivery") is not None]
            table[key][server] = (statistics.median(r["deliveries_per_s"] for r in runs),
                                  statistics.median(cpu) if cpu else None, len(runs))
    return table


def panel(out, x0, width, title, scenarios, servers, colors, table, index):
    """One bar panel: scenarios along x, one bar per server in each group."""
    values = [table[s][srv][index] for s in scenarios for srv in servers
              if srv in table[s] and table[s][srv][index] is not None]
    step, top = axis(max(values) if values else 1)
    y0, height = TOP, PANEL_HEIGHT
    out.append(f'<text x="{x0}" y="{y0 - 14}" class="panel">{escape(title)}</text>')
    for i in range(round(top / step) + 1):
        value = step * i
        y = y0 + height - height * value / top
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + width}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{escape(tick_text(value))}</text>')
    group_width = width / max(1, len(scenarios))
    bar_width = min(48, group_width * 0.8 / max(1, len(servers)))
    for g, scenario in enumerate(scenarios):
        gx = x0 + g * group_width + (group_width - bar_width * len(servers)) / 2
        for b, server in enumerate(servers):
            x = gx + b * bar_width
            entry = table[scenario].get(server)
            value = entry[index] if entry else None
            if value is None:
                out.append(f'<text x="{x + bar_width / 2:.1f}" y="{y0 + height - 4}" class="value" text-anchor="middle">–</text>')
                continue
            h = height * value / top
            runs = entry[2]
            tip = f"{server}, {' · '.join(scenario_label(scenario))}: {value:,.3f} (median of {runs} run{'s' if runs != 1 else ''})"
            out.append(f'<rect x="{x + 1:.1f}" y="{y0 + height - h:.1f}" width="{bar_width - 2:.1f}" height="{h:.1f}" '
                       f'fill="{colors[server]}" class="bar" data-server="{escape(server)}" data-value="{value}">'
                       f'<title>{escape(tip)}</title></rect>')
            out.append(f'<text x="{x + bar_width / 2:.1f}" y="{y0 + height - h - 4:.1f}" class="value" '
                       f'text-anchor="middle">{escape(short(value))}</text>')
        label_x = x0 + g * group_width + group_width / 2
        lines = scenario_label(scenario)
        if len({k[1] for k in scenarios}) == 1:
            lines = lines[1:]
        for line_no, part in enumerate(lines):
            out.append(f'<text x="{label_x:.1f}" y="{y0 + height + 18 + 14 * line_no}" class="label" '
                       f'text-anchor="middle">{escape(part)}</text>')


def render(rows, title, servers=None):
    if servers is None:
        seen = []
        for row in rows:
            if row["server"] not in seen:
                seen.append(row["server"])
        # Chorus first, then the peers in the order they appear.
        servers = sorted(seen, key=lambda s: (not s.startswith("chorus"), seen.index(s)))
    table = summarise(rows, servers)
    scenarios = sorted(table, key=lambda k: (k[0], k[1], k[2], k[3][0], -k[3][1], k[4]))
    colors = {server: PALETTE[i % len(PALETTE)] for i, server in enumerate(servers)}
    panel_width = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT - PANEL_GAP) / 2
    height = TOP + PANEL_HEIGHT + 90
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
           f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
           '<style>.title{font-size:17px;font-weight:bold}.panel{font-size:14px;font-weight:bold}'
           '.tick,.label,.legend{font-size:12px;fill:#333}.value{font-size:11px;fill:#111}'
           '.grid{stroke:#ddd;stroke-width:1}</style>',
           f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>',
           f'<text x="{MARGIN_LEFT}" y="26" class="title">{escape(title)}</text>']
    panel(out, MARGIN_LEFT, panel_width, "deliveries per second (higher is better)", scenarios, servers, colors, table, 0)
    panel(out, MARGIN_LEFT + panel_width + PANEL_GAP, panel_width, "server CPU µs per delivery (lower is better)",
          scenarios, servers, colors, table, 1)
    runs = sorted({entry[2] for s in table.values() for entry in s.values()})
    x = MARGIN_LEFT
    y = height - 18
    for server in servers:
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colors[server]}"/>')
        out.append(f'<text x="{x + 17}" y="{y}" class="legend">{escape(server)}</text>')
        x += 30 + 8 * len(server)
    runs_text = "each bar: one run" if runs == [1] else (
        f"each bar: the median of {runs[0]} runs" if len(runs) == 1 else f"each bar: the median of {runs[0]}–{runs[-1]} runs")
    out.append(f'<text x="{WIDTH - MARGIN_RIGHT}" y="{y}" class="legend" text-anchor="end">{escape(runs_text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description="chorus-bench JSON results -> SVG chart")
    p.add_argument("results", nargs="+", help="JSON-lines files from scripts/bench-fanout.sh / bench-compare.sh")
    p.add_argument("-o", "--output", required=True, help="the SVG file to write")
    p.add_argument("--title", default="Fan-out: chorus-bench results")
    p.add_argument("--servers", help="comma-separated servers, in this order (default: all, chorus first)")
    args = p.parse_args()
    rows = load(args.results)
    if not rows:
        sys.exit("bench-chart: no fan-out results in " + ", ".join(args.results))
    servers = [s for s in args.servers.split(",") if s] if args.servers else None
    svg = render(rows, args.title, servers)
    with open(args.output, "w") as f:
        f.write(svg)
    print(f"bench-chart: wrote {args.output} ({len(rows)} runs)")


if __name__ == "__main__":
    main()
