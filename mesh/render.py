"""Writing compiled objects as YAML: one folder per cluster, one multi-document file per kind.

Files are numbered in apply order, so `kubectl apply -f <dir>/<cluster>/` creates namespaces first.
The output folder is replaced whole (written beside it, then swapped in), so a cluster or kind that
disappeared leaves no stale file behind; a folder fleet-mesh did not write is never overwritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mesh import yamlout
from mesh.compile import KINDS
from mesh.model import PLACEHOLDER_SUFFIX

MARKER = ".fleet-mesh-render"

class RenderError(Exception):
    """The output folder cannot be written safely."""


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """Multi-document YAML, keys in the order builders wrote them (reviewed order, not sorted)."""
    return yamlout.dump_all(objects)


def file_name(kind: str) -> str:
    return f"{KINDS.index(kind):02d}-{kind.lower()}.yaml"


def cluster_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    """File name → YAML text for one cluster; kinds with no object get no file."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    return {file_name(kind): to_yaml(by_kind[kind]) for kind in KINDS if kind in by_kind}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write(out: Path, compiled: Mapping[str, list[dict[str, Any]]]) -> int:
    """Replace `out` with the rendered fleet; returns the number of files written."""
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    # mkdtemp makes 0700; the output is for others (a GitOps agent) to read: 0755 under umask 022.
    staging.chmod(0o777 & ~_umask())
    count = 0
    try:
        (staging / MARKER).write_text("Written by `mesh render`; replaced on every run.\n")
        for cluster, objects in compiled.items():
            folder = staging / cluster
            folder.mkdir()
            for name, text in cluster_files(objects).items():
                (folder / name).write_text(text, encoding="utf-8")
                count += 1
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise RenderError(f"{out} exists and is not a directory")
    if any(out.iterdir()) and not (out / MARKER).is_file():
        raise RenderError(
            f"{out} is not empty and was not written by `mesh render`; choose another --out "
            "or empty it"
        )


def unresolved_addresses(compiled: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """Placeholders written where the manifest pins no east-west address (sorted, unique)."""
    return sorted({address for objects in compiled.values() for address in _addresses(objects)})


def _addresses(objects: list[dict[str, Any]]) -> Iterator[str]:
    for obj in objects:
        spec = obj.get("spec", {})
        candidates = [spec.get("address")] + [e.get("address") for e in spec.get("endpoints", [])]
        yield from (a for a in candidates if isinstance(a, str) and a.endswith(PLACEHOLDER_SUFFIX))
