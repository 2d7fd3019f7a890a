#!/usr/bin/env python3
"""Turns the JSON lines of one `benches/run.sh` run into the ml section of docs/benchmarks.md
(between the `<!-- ml-bench:begin -->` and `<!-- ml-bench:end -->` markers) and an SVG plot.

Standard library only. Usage: benches/report.py RESULTS.jsonl MACHINE.json DOC.md PLOT.svg
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

BEGIN, END = "<!-- ml-bench:begin -->", "<!-- ml-bench:end -->"


def load(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.startswith("{")]


def fmt(x, digits=2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def inference_rows(rows: list[dict]) -> tuple[list[str], list[tuple[str, str, float]]]:
    tract = [r for r in rows if r.get("engine") == "tract"]
    ort = [r for r in rows if r.get("engine") == "onnxruntime"]
    lines = [
        "| model | setup | tract layout | tract ms (median) | tract img/s | onnxruntime ms | onnxruntime img/s | tract / onnxruntime |",
        "|---|---|---|---|---|---|---|---|",
    ]
    bars = []
    for t in tract:
        o = next((o for o in ort if o["model"] == t["model"] and o["setup"] == t["setup"]), None)
        ratio = t["median_ms"] / o["median_ms"] if o else None
        lines.append(
            f'| {t["model"]} | {t["setup"]} | {t["layout"]} | {fmt(t["median_ms"])} | '
            f'{fmt(t["images_per_s"], 1)} | {fmt(o and o["median_ms"])} | '
            f'{fmt(o and o["images_per_s"], 1)} | **{fmt(ratio)}×** |'
        )
        if t["setup"] == "threads=1":
            bars.append((t["model"].replace("efficientnet-", ""), f'tract {t["layout"]}', t["median_ms"]))
    for o in ort:
        if o["setup"] == "threads=1" and any(t["model"] == o["model"] for t in tract):
            bars.append((o["model"].replace("efficientnet-", ""), "onnxruntime", o["median_ms"]))
    return lines, bars


def decode_rows(rows: list[dict]) -> list[str]:
    dec = [r for r in rows if r.get("engine") == "decode"]
    if not dec:
        return []
    lines = ["| image | decoder | DCT scale | median ms | p90 ms | min ms | / Pillow draft |", "|---|---|---|---|---|---|---|"]
    for r in dec:
        pillow = next((p for p in dec if p["image"] == r["image"] and p["decoder"].startswith("Pillow")), None)
        ratio = r["median_ms"] / pillow["median_ms"] if pillow else None
        lines.append(
            f'| {r["image"].split("/")[-1]} | {r["decoder"]} | {r["dct_scale"]} | {fmt(r["median_ms"])} | '
            f'{fmt(r["p90_ms"])} | {fmt(r["min_ms"])} | {fmt(ratio)}× |'
        )
    return lines


def profile_rows(rows: list[dict]) -> list[str]:
    prof = [r for r in rows if r.get("engine") == "tract profile"]
    if not prof:
        return []
    lines = ["| model | layout | op | nodes | median ms | share of the run |", "|---|---|---|---|---|---|"]
    for r in prof:
        share = r.get("share")
        lines.append(
            f'| {r["model"]} | {r["layout"]} | {r["op"]} | {r.get("nodes", "")} | {fmt(r["median_ms"], 3)} | '
            f'{"" if share is None else f"{share * 100:.1f} %"} |'
        )
    return lines


def service_rows(rows: list[dict]) -> list[str]:
    svc = [r for r in rows if r.get("engine") == "ml service"]
    http = [r for r in rows if r.get("engine") == "http"]
    lines = []
    if svc:
        lines += ["| build | ready s | RSS at ready MB | RSS after first request MB |", "|---|---|---|---|"]
        for r in svc:
            lines.append(f'| {r["service_version"]} | {r["ready_s"]} | {r["rss_mib_ready"]} | {r["rss_mib_after_first_request"]} |')
    if http:
        lines += ["", "| image | concurrency | service | rps | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
        for r in http:
            lines.append(f'| {r["image"]} | {r["concurrency"]} | {r["service"]} | {r["rps"]} | {r["p50_ms"]} | {r["p99_ms"]} |')
    workers = [r for r in rows if r.get("engine") == "workers"]
    if workers:
        lines += ["", "Workers against cores: the service alone, concurrency 4, "
                  f'{workers[0]["image"]}, {workers[0]["cores"]} cores.', "",
                  "| ML_WORKERS | rps | p50 ms | p99 ms |", "|---|---|---|---|"]
        for r in workers:
            lines.append(f'| {r["workers"]} | {r["rps"]} | {r["p50_ms"]} | {r["p99_ms"]} |')
    return lines


def svg(bars: list[tuple[str, str, float]]) -> str:
    """Grouped horizontal bars: one group per model, one bar per engine/layout (ms, 1 thread)."""
    colours = {"onnxruntime": "#4c72b0", "tract nhwc-fused": "#dd8452", "tract nhwc": "#c44e52", "tract nchw": "#8c8c8c"}
    bar_h, gap, left, width = 18, 14, 170, 420
    top = 40
    longest = max((b[2] for b in bars), default=1.0)
    y = top
    parts = []
    for model in dict.fromkeys(b[0] for b in bars):
        parts.append(f'<text x="8" y="{y + 12}" font-weight="bold">{html.escape(model)}</text>')
        y += 18
        for _, label, ms in [b for b in bars if b[0] == model]:
            w = width * ms / longest
            colour = colours.get(label, "#55a868")
            parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{html.escape(label)}</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{ms:.2f} ms</text>')
            y += bar_h + 4
        y += gap
    height = y + 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
        f'font-family="sans-serif" font-size="12">\n'
        f'<text x="8" y="20" font-size="14">Single-image inference, 1 thread, median ms (lower is better)</text>\n'
        + "\n".join(parts)
        + "\n</svg>\n"
    )


def main() -> None:
    results, machine_file, doc_file, plot_file = sys.argv[1:5]
    rows = load(results)
    machine = json.loads(Path(machine_file).read_text())
    inf, bars = inference_rows(rows)
    Path(plot_file).write_text(svg(bars))
    plot_rel = Path(plot_file).name
    section = [
        BEGIN,
        "## ml: the one-run benchmark (`benches/run.sh --write-docs`)",
        "",
        "Written by `benches/run.sh --write-docs` from one run; every figure below comes from that run. "
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".",
        "",
        "### Inference: tract against onnxruntime, same ONNX file and tensor",
        "",
        f"![single-thread inference]({plot_rel})",
        "",
        *inf,
    ]
    for title, lines in [
        ("### JPEG decode at the DCT scale the service needs (short side ≥ 256)", decode_rows(rows)),
        ("### Where the time goes in tract's final graph (per operator kind)", profile_rows(rows)),
        ("### The release binary, and the service against the Python peer", service_rows(rows)),
    ]:
        if lines:
            section += ["", title, "", *lines]
    section.append(END)
    doc = Path(doc_file)
    text = doc.read_text()
    block = "\n".join(section)
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + block + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


if __name__ == "__main__":
    main()
