"""Draws the speed/quality picture of the MiniLM candidates as an SVG (no plotting library).

    bazel run //models/minilm:plot -- --quality evaluation.json --speed speed.json \
        --out docs/minilm-candidates.svg

`--quality`: what //models/minilm:evaluation writes ({"candidates": {name:
{"paraphrase_top1", "mean_cosine_to_reference", "file_bytes", ...}}}), measured
with the encoder that ships. `--speed`: what `bazel run //inference/text:benchmark
-- --peers --json FILE` writes ({"results": [{"engine", "threads", "batch1_ms",
"batch32_per_s"}]}). Two panels, one point per candidate: batch-1 latency and
batch-32 throughput (x) against mean cosine similarity to sentence-transformers
(y), at one thread count; the peers' figures are drawn as dashed lines. The
same inputs give the same bytes.
"""

import json
import math

from tools import cli

WIDTH, HEIGHT = 900, 420
PANEL_W, PANEL_H = 360, 300
MARGIN_L, MARGIN_T = 70, 50
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#17becf")


def _esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _ticks(low, high, count=5):
    """Round tick values covering [low, high]."""
    span = high - low or abs(high) or 1.0
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = raw
    for nice in (1, 2, 2.5, 5, 10):
        if magnitude * nice >= raw:
            step = magnitude * nice
            break
    start = math.floor(low / step) * step
    values = []
    value = start
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            values.append(round(value, 10))
        value += step
    return values


def points(quality, speed, threads):
    """[(candidate, batch1_ms, batch32_per_s, mean_cosine, top1)], and the peers'
    [(engine, batch1_ms, batch32_per_s)] at `threads`."""
    rows = {r["engine"]: r for r in speed["results"] if r["threads"] == threads}
    ours, peers = [], []
    for name, figures in sorted(quality["candidates"].items()):
        row = rows.get(f"modelship {name}")
        if row is None:
            continue
        ours.append((name, row["batch1_ms"], row["batch32_per_s"],
                     figures["mean_cosine_to_reference"], figures["paraphrase_top1"]))
    for engine, row in sorted(rows.items()):
        if not engine.startswith("modelship"):
            peers.append((engine, row["batch1_ms"], row["batch32_per_s"]))
    return ours, peers


def _panel(out, x0, title, xlabel, series, peers, ylow, yhigh):
    xs = [p[0] for p in series] + [p[1] for p in peers]
    xlow, xhigh = 0.0, max(xs) * 1.1

    def px(x):
        return x0 + (x - xlow) / (xhigh - xlow) * PANEL_W

    def py(y):
        return MARGIN_T + PANEL_H - (y - ylow) / (yhigh - ylow) * PANEL_H
    out.append(f'<rect x="{x0}" y="{MARGIN_T}" width="{PANEL_W}" height="{PANEL_H}" '
               'fill="none" stroke="#333"/>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{MARGIN_T - 12}" text-anchor="middle" '
               f'font-weight="bold">{_esc(title)}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{MARGIN_T + PANEL_H + 38}" '
               f'text-anchor="middle">{_esc(xlabel)}</text>')
    for tick in _ticks(xlow, xhigh):
        out.append(f'<line x1="{px(tick):.1f}" y1="{MARGIN_T + PANEL_H}" x2="{px(tick):.1f}" '
                   f'y2="{MARGIN_T + PANEL_H + 5}" stroke="#333"/>')
        out.append(f'<text x="{px(tick):.1f}" y="{MARGIN_T + PANEL_H + 18}" '
                   f'text-anchor="middle" font-size="11">{tick:g}</text>')
    for tick in _ticks(ylow, yhigh):
        out.append(f'<line x1="{x0 - 5}" y1="{py(tick):.1f}" x2="{x0}" y2="{py(tick):.1f}" '
                   'stroke="#333"/>')
        out.append(f'<text x="{x0 - 8}" y="{py(tick) + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{tick:g}</text>')
    for i, (engine, x) in enumerate(peers):
        out.append(f'<line x1="{px(x):.1f}" y1="{MARGIN_T}" x2="{px(x):.1f}" '
                   f'y2="{MARGIN_T + PANEL_H}" stroke="#888" stroke-dasharray="4,3"/>')
        out.append(f'<text x="{px(x) + 3:.1f}" y="{MARGIN_T + 12 + 12 * i}" font-size="10" '
                   f'fill="#555">{_esc(engine)}</text>')
    for i, (x, y, name) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="{color}"/>')
        out.append(f'<text x="{px(x) + 7:.1f}" y="{py(y) - 6:.1f}" font-size="11" '
                   f'fill="{color}">{_esc(name)}</text>')


def svg(quality, speed, threads):
    """The SVG document (text)."""
    ours, peers = points(quality, speed, threads)
    if not ours:
        raise ValueError(f"no candidate has both quality and speed figures at {threads} "
                         "thread(s): check the two files' candidate names")
    ys = [p[3] for p in ours]
    ylow, yhigh = min(ys), max(ys)
    pad = max((yhigh - ylow) * 0.15, 1e-4)
    ylow, yhigh = ylow - pad, min(1.0, yhigh + pad) if yhigh + pad > 1.0 else yhigh + pad
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{MARGIN_L - 55}" y="{MARGIN_T + PANEL_H / 2}" text-anchor="middle" '
           f'transform="rotate(-90 {MARGIN_L - 55} {MARGIN_T + PANEL_H / 2})">mean cosine '
           'to sentence-transformers</text>']
    _panel(out, MARGIN_L, f"Batch 1, one sentence ({threads} thread)", "latency (ms), lower is "
           "better", [(p[1], p[3], p[0]) for p in ours], [(p[0], p[1]) for p in peers],
           ylow, yhigh)
    _panel(out, MARGIN_L + PANEL_W + 80, f"Batch 32 ({threads} thread)", "sentences/s, higher "
           "is better", [(p[2], p[3], p[0]) for p in ours], [(p[0], p[2]) for p in peers],
           ylow, yhigh)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv=None):
    """Command line entry point; returns the exit status."""
    parser = cli.parser(__doc__)
    parser.add_argument("--quality", required=True, help="evaluation.json")
    parser.add_argument("--speed", required=True, help="the benchmark's --json output")
    parser.add_argument("--threads", type=int, default=1, help="thread count to draw")
    parser.add_argument("--out", required=True, help="the SVG file to write")
    args = parser.parse_args(argv)
    documents = []
    for path in (args.quality, args.speed):
        with open(cli.user_path(path), encoding="utf-8") as text:
            try:
                documents.append(json.load(text))
            except ValueError as err:
                raise cli.Failure(f"{path} is not JSON ({err})") from None
    try:
        document = svg(documents[0], documents[1], args.threads)
    except (ValueError, KeyError, TypeError) as err:
        raise cli.Failure(f"cannot draw the picture: {err!r}") from None
    with open(cli.user_path(args.out), "w", encoding="utf-8") as out:
        out.write(document)
    print(f"wrote {args.out}")
    return cli.OK


if __name__ == "__main__":
    cli.run(main)
