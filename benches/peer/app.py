"""The ml service as a Python user would write it: the benchmark peer of the Rust `ml` crate.

Flask under gunicorn (2 sync workers, see run.sh), onnxruntime with one intra-op thread per worker,
Pillow with `Image.draft` so large JPEGs decode at a reduced DCT scale. Same model, same
preprocessing and the same JSON answer as the Rust service's `POST /v1/classify`.

Environment:
  PEER_MODEL        model name from ml/model/manifest.json (default efficientnet-lite0)
  MODEL_DIR         folder holding manifest.json, the .onnx files and labels.txt (default ml/model)
  MAX_UPLOAD_BYTES  largest accepted body (default 10485760)
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from flask import Flask, Response, request
from PIL import Image, ImageOps, UnidentifiedImageError

SERVED_BY = "ml-peer/python"
ACCEPTED_TYPES = {"image/jpeg", "image/png", "image/webp"}
DEFAULT_TOP_K = 5
MAX_TOP_K = 20
CROP_PADDING = 32


class ConfigError(Exception):
    pass


def _config() -> tuple[str, Path, int]:
    root = Path(__file__).resolve().parent.parent.parent
    model = os.environ.get("PEER_MODEL", "efficientnet-lite0")
    model_dir = Path(os.environ.get("MODEL_DIR", str(root / "ml" / "model")))
    raw_max = os.environ.get("MAX_UPLOAD_BYTES", "10485760")
    try:
        max_bytes = int(raw_max)
        if max_bytes <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"MAX_UPLOAD_BYTES must be a positive integer, got {raw_max!r}") from None
    if not (model_dir / "manifest.json").is_file():
        raise ConfigError(f"MODEL_DIR {model_dir} has no manifest.json")
    return model, model_dir, max_bytes


class Classifier:
    def __init__(self, model: str, model_dir: Path):
        manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
        entries = {m["name"]: m for m in manifest["models"]}
        if model not in entries:
            raise ConfigError(f"PEER_MODEL {model!r} is not in the manifest (have {sorted(entries)})")
        entry = entries[model]
        self.name = entry["name"]
        self.version = entry["version"]
        self.size = int(entry["input_size"])
        pre = entry["preprocessing"]
        self.mean = float(pre["mean"])
        self.std = float(pre["std"])
        self.labels = (model_dir / entry["labels"]["file"]).read_text(encoding="utf-8").splitlines()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(
            str(model_dir / entry["file"]), opts, providers=["CPUExecutionProvider"]
        )

    def decode(self, data: bytes) -> Image.Image:
        img = Image.open(io.BytesIO(data))
        if img.format == "JPEG":
            # Decode at the smallest DCT scale whose short side still covers the crop's source.
            w, h = img.size
            short = min(w, h)
            want = self.size + CROP_PADDING
            if short > want:
                img.draft("RGB", (-(-w * want // short), -(-h * want // short)))
        img.load()
        return img

    def preprocess(self, img: Image.Image) -> np.ndarray:
        img = ImageOps.exif_transpose(img).convert("RGB")
        w, h = img.size
        s = self.size
        crop = min(w, h) * s // (s + CROP_PADDING)
        top = (h - crop + 1) // 2
        left = (w - crop + 1) // 2
        img = img.crop((left, top, left + crop, top + crop)).resize((s, s), Image.BICUBIC)
        x = (np.asarray(img, dtype=np.float32) - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {"input": tensor})
        return logits.reshape(-1)

    def top_k(self, logits: np.ndarray, k: int) -> list[dict]:
        z = logits.astype(np.float64) - logits.max()
        p = np.exp(z)
        p /= p.sum()
        order = np.argsort(-logits, kind="stable")[:k]
        return [{"label": self.labels[i], "index": int(i), "probability": float(p[i])} for i in order]


def _error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    resp = Response(body, status=status, mimetype="application/json")
    resp.headers["x-served-by"] = SERVED_BY
    return resp


def _json(value: dict) -> Response:
    resp = Response(json.dumps(value), mimetype="application/json")
    resp.headers["x-served-by"] = SERVED_BY
    return resp


def create_app() -> Flask:
    model, model_dir, max_bytes = _config()
    classifier = Classifier(model, model_dir)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_bytes

    @app.get("/healthz")
    def healthz():
        return _json({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        return _json({"status": "ready", "model": {"name": classifier.name, "version": classifier.version}})

    @app.get("/v1/model")
    def model_info():
        return _json({"name": classifier.name, "version": classifier.version, "input_size": classifier.size,
                      "classes": len(classifier.labels), "served_by": [SERVED_BY]})

    @app.post("/v1/classify")
    def classify():
        started = time.perf_counter()
        raw_k = request.args.get("top_k", str(DEFAULT_TOP_K))
        try:
            k = int(raw_k)
            if not 1 <= k <= MAX_TOP_K:
                raise ValueError
        except ValueError:
            return _error(400, "bad_request", f"top_k must be an integer from 1 to {MAX_TOP_K}, got {raw_k!r}")
        if request.content_length is not None and request.content_length > max_bytes:
            return _error(413, "payload_too_large", f"the image is larger than {max_bytes} bytes")
        ctype = (request.mimetype or "").lower()
        if ctype == "multipart/form-data":
            upload = request.files.get("image")
            if upload is None:
                return _error(400, "bad_request", "multipart body has no field named image")
            ctype = (upload.mimetype or "").lower()
            data = upload.read()
        else:
            data = request.get_data(cache=False)
        if ctype not in ACCEPTED_TYPES:
            return _error(415, "unsupported_media_type", f"content type {ctype!r} is not image/jpeg, image/png or image/webp")
        if not data:
            return _error(400, "bad_request", "the request body is empty")

        t0 = time.perf_counter()
        try:
            img = classifier.decode(data)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
            return _error(422, "undecodable_image", f"the image does not decode: {type(exc).__name__}")
        t1 = time.perf_counter()
        tensor = classifier.preprocess(img)
        t2 = time.perf_counter()
        logits = classifier.infer(tensor)
        t3 = time.perf_counter()
        predictions = classifier.top_k(logits, k)
        done = time.perf_counter()
        return _json(
            {
                "model": {"name": classifier.name, "version": classifier.version},
                "predictions": predictions,
                "timings_ms": {
                    "decode": (t1 - t0) * 1e3,
                    "preprocess": (t2 - t1) * 1e3,
                    "inference": (t3 - t2) * 1e3,
                    "total": (done - started) * 1e3,
                },
                "served_by": [SERVED_BY],
            }
        )

    @app.errorhandler(413)
    def too_large(_exc):
        return _error(413, "payload_too_large", f"the image is larger than {max_bytes} bytes")

    return app


app = create_app()
