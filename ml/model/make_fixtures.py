#!/usr/bin/env python3
"""Make the ml test fixtures and the benchmark images from scikit-image's bundled sample photos.

Writes (paths relative to the repository root):
  ml/tests/fixtures/photos/    real photos (JPEG, one with an EXIF orientation, one WebP),
                               expected.json (onnxruntime top-5 per photo and model), README.md
  ml/tests/fixtures/golden/    preprocessed input tensors and onnxruntime logits (raw little-endian
                               float32) for each model, index.json, README.md
  benches/images/              640x480, 4000x3000 and ~100 KB JPEGs for the benchmarks, README.md

The reference preprocessing (`reference_tensor`) is the one the models were trained with: decode
to RGB (EXIF orientation applied), centre square crop of side min(h, w) * S // (S + 32), Pillow
bicubic resize to S x S, (x - 127) / 128, NCHW float32.

Usage:
  make_fixtures.py           write everything
  make_fixtures.py --check   rebuild into a temporary folder and compare with the committed files
                             (bytes for photos and tensors, 1e-5 for onnxruntime's numbers)

Needs the models from export_onnx.py and the venv from requirements.txt (see export.sh).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

MODEL_DIR = Path(__file__).resolve().parent
ROOT = MODEL_DIR.parent.parent
PHOTOS = Path("ml/tests/fixtures/photos")
GOLDEN = Path("ml/tests/fixtures/golden")
BENCH_IMAGES = Path("benches/images")
SKIMAGE = "scikit-image"
EXIF_ORIENTATION_TAG = 0x0112
TOP_K = 5
ESPRESSO = 967
GOLDEN_PHOTOS = ("coffee.jpg", "chelsea.jpg")
LOGIT_TOLERANCE = 1e-5

# Each sample: the committed file name, the scikit-image file it comes from, and its licence as
# scikit-image documents it (scikit-image itself is BSD-3-Clause).
SAMPLES = {
    "coffee.jpg": ("coffee.png", "CC0 (photographer Rachel Michetti)", "a cup of espresso on a saucer"),
    "chelsea.jpg": ("chelsea.png", "CC0 (photographer Stefan van der Walt)", "Chelsea the cat"),
    "astronaut.jpg": ("astronaut.png", "public domain (NASA)", "astronaut Eileen Collins in a flight suit"),
    "rocket.jpg": ("rocket.jpg", "public domain (SpaceX)", "DSCOVR on a Falcon 9 on the launch pad"),
}
EXIF_PHOTO = "rocket-exif-orientation-6.jpg"
WEBP_PHOTO = "coffee.webp"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def skimage_file(name: str) -> Path:
    dist = importlib.metadata.distribution(SKIMAGE)
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(f"skimage/data/{name}"):
            return Path(dist.locate_file(f))
    raise FileNotFoundError(f"{SKIMAGE} does not bundle skimage/data/{name}")


def manifest() -> dict:
    return json.loads((MODEL_DIR / "manifest.json").read_text(encoding="utf-8"))


def labels() -> list[str]:
    return (MODEL_DIR / "labels.txt").read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------------------------------------
# Reference preprocessing and inference
# ---------------------------------------------------------------------------------------------


def decode(data: bytes, honour_orientation: bool = True) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    if honour_orientation:
        img = ImageOps.exif_transpose(img)
    return img.convert("RGB")


def reference_tensor(img: Image.Image, size: int) -> np.ndarray:
    w, h = img.size
    crop = min(w, h) * size // (size + 32)
    top = (h - crop + 1) // 2
    left = (w - crop + 1) // 2
    img = img.crop((left, top, left + crop, top + crop)).resize((size, size), Image.BICUBIC)
    x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


class Model:
    def __init__(self, entry: dict):
        self.name = entry["name"]
        self.version = entry["version"]
        self.size = entry["input_size"]
        self.file = entry["file"]
        self.sha256 = entry["sha256"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(MODEL_DIR / self.file), opts, providers=["CPUExecutionProvider"])

    def logits(self, tensor: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(["logits"], {"input": tensor})
        return out.astype("<f4")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    e = np.exp(z)
    return e / e.sum()


def top_k(logits: np.ndarray, names: list[str], k: int = TOP_K) -> list[dict]:
    flat = logits.reshape(-1)
    p = softmax(flat)
    order = sorted(range(flat.size), key=lambda i: (-flat[i], i))[:k]
    return [{"label": names[i], "index": i, "probability": float(p[i]), "logit": float(flat[i])} for i in order]


# ---------------------------------------------------------------------------------------------
# Photos
# ---------------------------------------------------------------------------------------------


def encode_jpeg(img: Image.Image, quality: int, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    kwargs = {"quality": quality, "optimize": True, "subsampling": "4:2:0"}
    if exif is not None:
        kwargs["exif"] = exif.tobytes()
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def make_photos(out: Path) -> dict[str, bytes]:
    photos: dict[str, bytes] = {}
    for name, (source, _, _) in SAMPLES.items():
        raw = skimage_file(source).read_bytes()
        if source.endswith(".jpg"):
            photos[name] = raw  # already a JPEG: keep the bundled bytes
        else:
            photos[name] = encode_jpeg(Image.open(io.BytesIO(raw)).convert("RGB"), 90)

    # Orientation 6 = "rotate 90 degrees clockwise to display": store the upright pixels rotated
    # 90 degrees counter-clockwise, so only a reader that honours the tag sees the rocket upright.
    upright = decode(photos["rocket.jpg"])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6
    photos[EXIF_PHOTO] = encode_jpeg(upright.transpose(Image.Transpose.ROTATE_90), 90, exif)
    restored = decode(photos[EXIF_PHOTO])
    if restored.size != upright.size:
        raise RuntimeError("EXIF orientation 6 did not restore the upright size")

    buf = io.BytesIO()
    decode(photos["coffee.jpg"]).save(buf, "WEBP", quality=90, method=6)
    photos[WEBP_PHOTO] = buf.getvalue()

    folder = out / PHOTOS
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in photos.items():
        if len(data) >= 150_000:
            raise RuntimeError(f"{name} is {len(data)} bytes; photos must stay under 150 KB")
        (folder / name).write_bytes(data)
    return photos


def photo_entry(name: str, data: bytes, models: list[Model], names: list[str]) -> dict:
    img = Image.open(io.BytesIO(data))
    entry = {
        "file": name,
        "format": img.format.lower(),
        "stored_width": img.size[0],
        "stored_height": img.size[1],
        "bytes": len(data),
        "sha256": sha256_bytes(data),
    }
    if name == EXIF_PHOTO:
        entry["exif_orientation"] = 6
        entry["derived_from"] = "rocket.jpg"
        entry["note"] = "pixels stored rotated 90 degrees counter-clockwise; orientation 6 turns them upright"
    elif name == WEBP_PHOTO:
        entry["derived_from"] = "coffee.jpg"
        entry["note"] = "lossy WebP, quality 90"
    else:
        source, licence, what = SAMPLES[name]
        entry["source"] = f"{SKIMAGE} {importlib.metadata.version(SKIMAGE)}: skimage/data/{source}"
        entry["licence"] = licence
        entry["subject"] = what
    upright = decode(data)
    entry["width"], entry["height"] = upright.size
    results = {}
    for m in models:
        result = {"top5": top_k(m.logits(reference_tensor(upright, m.size)), names)}
        if name == EXIF_PHOTO:
            ignored = decode(data, honour_orientation=False)
            result["top1_ignoring_orientation"] = top_k(m.logits(reference_tensor(ignored, m.size)), names, 1)[0]
        results[m.name] = result
    entry["models"] = results
    return entry


# ---------------------------------------------------------------------------------------------
# Golden parity tensors
# ---------------------------------------------------------------------------------------------


def make_golden(out: Path, photos: dict[str, bytes], models: list[Model], names: list[str]) -> dict:
    folder = out / GOLDEN
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for m in models:
        short = m.name.removeprefix("efficientnet-")
        for photo in GOLDEN_PHOTOS:
            stem = f"{short}-{Path(photo).stem}"
            tensor = reference_tensor(decode(photos[photo]), m.size).astype("<f4")
            logits = m.logits(tensor)
            input_bytes = tensor.tobytes(order="C")
            logit_bytes = logits.tobytes(order="C")
            (folder / f"{stem}.input.f32").write_bytes(input_bytes)
            (folder / f"{stem}.logits.f32").write_bytes(logit_bytes)
            cases.append(
                {
                    "model": m.name,
                    "model_version": m.version,
                    "model_file": f"ml/model/{m.file}",
                    "model_sha256": m.sha256,
                    "photo": str(PHOTOS / photo),
                    "input": {
                        "file": f"{stem}.input.f32",
                        "name": "input",
                        "shape": list(tensor.shape),
                        "dtype": "float32",
                        "byte_order": "little",
                        "layout": "NCHW, RGB, (x - 127) / 128",
                        "sha256": sha256_bytes(input_bytes),
                    },
                    "logits": {
                        "file": f"{stem}.logits.f32",
                        "name": "logits",
                        "shape": list(logits.shape),
                        "dtype": "float32",
                        "byte_order": "little",
                        "sha256": sha256_bytes(logit_bytes),
                    },
                    "top5": top_k(logits, names),
                }
            )
    index = {
        "generated_by": "ml/model/make_fixtures.py",
        "reference_engine": f"onnxruntime {ort.__version__} (CPU, 1 intra-op thread)",
        "max_abs_diff": 1e-4,
        "cases": cases,
    }
    write_json(folder / "index.json", index)
    return index


# ---------------------------------------------------------------------------------------------
# Benchmark images
# ---------------------------------------------------------------------------------------------


def jpeg_near(img: Image.Image, target: int, qualities: range) -> tuple[bytes, int]:
    """The JPEG (over the given qualities) whose size is closest to target bytes."""
    best = None
    for q in qualities:
        data = encode_jpeg(img, q)
        if best is None or abs(len(data) - target) < abs(len(best[0]) - target):
            best = (data, q)
    assert best is not None
    return best


def with_grain(img: Image.Image, sigma: float, seed: int) -> Image.Image:
    """Adds fixed-seed Gaussian grain, standing in for the sensor noise of a real full-size photo."""
    rng = np.random.default_rng(seed)
    a = np.asarray(img, dtype=np.float32)
    a = a + rng.normal(0.0, sigma, size=a.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def make_bench_images(out: Path, photos: dict[str, bytes]) -> list[dict]:
    folder = out / BENCH_IMAGES
    folder.mkdir(parents=True, exist_ok=True)
    coffee = decode(photos["coffee.jpg"])  # 600 x 400
    w, h = coffee.size
    cw = h * 4 // 3
    left = (w - cw) // 2
    coffee43 = coffee.crop((left, 0, left + cw, h))  # 533 x 400, 4:3
    chelsea = decode(photos["chelsea.jpg"])

    made = []
    small = coffee43.resize((640, 480), Image.BICUBIC)
    data, q = jpeg_near(small, 80_000, range(80, 99))
    made.append(("espresso-640x480.jpg", data, q, "coffee.jpg, centre 4:3 crop, bicubic to 640x480"))

    large = with_grain(coffee43.resize((4000, 3000), Image.LANCZOS), 3.0, 4000)
    made.append(("espresso-4000x3000.jpg", encode_jpeg(large, 85), 85,
                 "coffee.jpg, centre 4:3 crop, Lanczos to 4000x3000, Gaussian grain sigma 3 (seed 4000)"))

    medium = chelsea.resize((640, 426), Image.BICUBIC)
    data, q = jpeg_near(medium, 100_000, range(80, 99))
    made.append(("cat-640x426-100k.jpg", data, q, "chelsea.jpg, bicubic to 640x426"))

    entries = []
    for name, data, q, how in made:
        (folder / name).write_bytes(data)
        img = Image.open(io.BytesIO(data))
        entries.append({"file": name, "width": img.size[0], "height": img.size[1], "bytes": len(data),
                        "jpeg_quality": q, "made_from": how, "sha256": sha256_bytes(data)})
    write_json(folder / "images.json", {"generated_by": "ml/model/make_fixtures.py", "images": entries})
    return entries


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_all(out: Path) -> None:
    names = labels()
    models = [Model(entry) for entry in manifest()["models"]]
    photos = make_photos(out)
    entries = [photo_entry(name, data, models, names) for name, data in photos.items()]
    for e in entries:
        lite0 = e["models"].get("efficientnet-lite0")
        if e["file"] == "coffee.jpg" and lite0 and lite0["top5"][0]["index"] != ESPRESSO:
            raise RuntimeError(f"espresso check failed: {lite0['top5'][0]}")
    write_json(
        out / PHOTOS / "expected.json",
        {
            "generated_by": "ml/model/make_fixtures.py",
            "reference": (
                "Pillow full-size decode with EXIF orientation applied, centre crop "
                "min(h, w) * S // (S + 32), Pillow BICUBIC to S x S, (x - 127) / 128, onnxruntime "
                f"{ort.__version__} on ml/model/*.onnx; probability = softmax of the logits"
            ),
            "photos": entries,
        },
    )
    make_golden(out, photos, models, names)
    make_bench_images(out, photos)


def close(a, b, tol: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tol
    if isinstance(a, str) and isinstance(b, str) and len(a) == 64 and len(b) == 64:
        return True  # sha256 of onnxruntime output: compared through the numbers instead
    return a == b


def check() -> int:
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        write_all(fresh)
        for built in sorted(p for p in fresh.rglob("*") if p.is_file()):
            rel = built.relative_to(fresh)
            committed = ROOT / rel
            if not committed.exists():
                status = "MISSING"
            elif built.read_bytes() == committed.read_bytes():
                status = "ok"
            elif rel.name.endswith(".logits.f32"):
                diff = np.abs(np.fromfile(built, "<f4") - np.fromfile(committed, "<f4")).max()
                status = "ok" if diff <= LOGIT_TOLERANCE else f"MISMATCH (max abs diff {diff:.3g})"
            elif rel.suffix == ".json":
                same = close(json.loads(built.read_text()), json.loads(committed.read_text()), LOGIT_TOLERANCE)
                status = "ok (within 1e-5)" if same else "MISMATCH"
            else:
                status = "MISMATCH"
            failures += not status.startswith("ok")
            print(f"{status:10} {rel}")
    if failures:
        print(f"{failures} file(s) differ from a fresh build", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare a fresh build with the committed files")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    write_all(ROOT)
    print(f"wrote {PHOTOS}, {GOLDEN}, {BENCH_IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
