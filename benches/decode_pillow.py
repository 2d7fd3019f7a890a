#!/usr/bin/env python3
"""Times Pillow's JPEG decode of the benchmark photos the way the Python peer does it
(benches/peer/app.py): `Image.draft` to the smallest DCT scale whose short side still covers
`--min-short-side`, then `load()`, then `convert("RGB")`. The peer of `ml/examples/bench_decode.rs`.

Prints one JSON object per line (median / p10 / p90 / min in ms over --runs timed decodes).

Usage: .venv-bench/bin/python benches/decode_pillow.py [--runs 100] [--min-short-side 256]
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import PIL
from PIL import Image

IMAGES = Path(__file__).resolve().parent / "images"


def decode(data: bytes, want: int) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    w, h = img.size
    short = min(w, h)
    if short > want:
        img.draft("RGB", (-(-w * want // short), -(-h * want // short)))
    img.load()
    return img.convert("RGB")


def summary(times: list[float]) -> dict:
    times = sorted(times)
    pct = lambda p: times[round((len(times) - 1) * p)]  # noqa: E731
    r = lambda x: round(x, 3)  # noqa: E731
    return {"runs": len(times), "median_ms": r(pct(0.5)), "p10_ms": r(pct(0.1)),
            "p90_ms": r(pct(0.9)), "min_ms": r(times[0])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--min-short-side", type=int, default=256)
    args = ap.parse_args()
    for name in ["espresso-640x480.jpg", "espresso-4000x3000.jpg"]:
        data = (IMAGES / name).read_bytes()
        img = decode(data, args.min_short_side)
        w0 = Image.open(io.BytesIO(data)).size[0]
        scale = f"1/{round(w0 / img.size[0])}"
        for _ in range(args.warmup):
            decode(data, args.min_short_side)
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            decode(data, args.min_short_side)
            times.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"engine": "decode", "image": f"benches/images/{name}",
                          "min_short_side": args.min_short_side,
                          "decoder": f"Pillow {PIL.__version__} draft", "dct_scale": scale,
                          **summary(times)}))


if __name__ == "__main__":
    main()
