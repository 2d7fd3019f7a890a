"""Validate the Istio resources of rendered manifests against the cloudcoil Istio models.

Usage: validate_istio.py FILE...

Every document whose apiVersion belongs to an `*.istio.io` group is validated against the
pydantic model of its kind, with unknown fields rejected at every nesting level (`extra="forbid"`)
and only the wire names (camelCase aliases) and strict JSON types accepted: the Kubernetes API
server would silently prune a snake_case spelling, and "90" is not a weight. Other documents are
skipped (kubernetes-validate checks them).

Exit status: 0 when every Istio document is valid, 1 when any is not (each error names the file,
the document, kind/namespace/name and the field path), 2 on bad usage or unreadable input.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import pydantic
import yaml
from cloudcoil import apimachinery
from cloudcoil.resources import Resource

import cloudcoil.models.istio as istio_models

ISTIO_GROUP_SUFFIX = ".istio.io"


def _nested_models(annotation: object) -> typing.Iterator[type[pydantic.BaseModel]]:
    """Yield every pydantic model class mentioned anywhere inside a type annotation."""
    if inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _nested_models(arg)


def _forbid_extra_everywhere(root: type[pydantic.BaseModel], done: set[type]) -> None:
    """Make `root` and every model reachable from its fields reject unknown and snake_case keys.

    Children are rebuilt before their parents, so a parent's schema embeds the strict child schema.
    """
    if root in done:
        return
    done.add(root)
    for field in root.model_fields.values():
        for child in _nested_models(field.annotation):
            _forbid_extra_everywhere(child, done)
    root.model_config["extra"] = "forbid"
    root.model_config["populate_by_name"] = False
    root.model_config["validate_by_name"] = False
    root.model_config["validate_by_alias"] = True
    root.model_config["strict"] = True
    root.model_rebuild(force=True)


@dataclass(frozen=True)
class KindKey:
    api_version: str
    kind: str


def load_istio_models() -> dict[KindKey, type[Resource]]:
    """Every Istio resource model shipped by cloudcoil-models-istio, keyed by apiVersion and kind."""
    models: dict[KindKey, type[Resource]] = {}
    for module_info in pkgutil.walk_packages(istio_models.__path__, istio_models.__name__ + "."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, Resource) or cls.__module__ != module.__name__:
                continue
            try:
                gvk = cls.gvk()
            except ValueError:
                continue
            if isinstance(gvk.api_version, str) and isinstance(gvk.kind, str):
                models[KindKey(gvk.api_version, gvk.kind)] = cls
    done: set[type] = set()
    _forbid_extra_everywhere(apimachinery.ObjectMeta, done)
    for cls in models.values():
        _forbid_extra_everywhere(cls, done)
    return models


def _location(loc: tuple[object, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "<document>"


def _describe(doc: dict[str, object]) -> str:
    metadata = doc.get("metadata")
    name = namespace = "?"
    if isinstance(metadata, dict):
        name = str(metadata.get("name", "?"))
        namespace = str(metadata.get("namespace", "<none>"))
    return f"{doc.get('kind', '?')} {namespace}/{name}"


def validate_file(path: Path, models: dict[KindKey, type[Resource]]) -> tuple[int, list[str]]:
    """Return (number of Istio documents checked, error lines)."""
    errors: list[str] = []
    checked = 0
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as err:
        return 0, [f"{path}: cannot read YAML: {err}"]
    for index, doc in enumerate(documents):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            errors.append(f"{path}: document {index}: not a mapping")
            continue
        api_version = doc.get("apiVersion")
        kind = doc.get("kind")
        if not isinstance(api_version, str) or "/" not in api_version:
            continue
        if not api_version.split("/", 1)[0].endswith(ISTIO_GROUP_SUFFIX):
            continue
        checked += 1
        where = f"{path}: document {index}: {_describe(doc)}"
        model = models.get(KindKey(api_version, str(kind)))
        if model is None:
            errors.append(f"{where}: no Istio model for apiVersion {api_version} kind {kind}")
            continue
        try:
            model.model_validate(doc)
        except pydantic.ValidationError as err:
            for problem in err.errors():
                field = _location(problem["loc"])
                errors.append(f"{where}: field {field}: {problem['msg']}")
    return checked, errors


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: validate_istio.py FILE...", file=sys.stderr)
        return 2
    models = load_istio_models()
    failed = False
    for name in argv:
        path = Path(name)
        if not path.is_file():
            print(f"{path}: no such file", file=sys.stderr)
            return 2
        checked, errors = validate_file(path, models)
        for line in errors:
            print(line)
        if errors:
            failed = True
        else:
            print(f"{path}: {checked} Istio resource(s) valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
