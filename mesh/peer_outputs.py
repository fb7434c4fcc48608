"""What another stack of the fleet (`mesh:peerStacks`) exports, derived offline from its stack file.

`mesh preview` needs the outputs of the stacks a shard reads. Previewing each of them in turn would
need their own peers' outputs, and shards read each other both ways: the number of previews grows
with the number of paths between stacks, hopeless at a hundred shards. What a reader takes from a
peer follows from the peer's configuration and the manifest alone (which clusters it manages, their
pinned addresses, revisions, how their mesh config is split), and the rest only the cloud knows
(`<computed>`, as a preview of the peer shows it), so each peer costs one read of its file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mesh.diagnostics import ManifestError
from mesh.infra.control_plane import revision_label
from mesh.infra.stack_config import (
    CONFIG_NAMESPACE,
    SECRET_KEYS,
    StackConfigError,
    decode_values,
    manifest_path,
    parse_stack_config,
)
from mesh.manifest import load
from mesh.model import World
from mesh.preview import COMPUTED

StackReader = Callable[[Path, str], tuple[str, dict[str, str], list[str]]]


def peer_outputs(project_dir: Path, config: Mapping[str, str], read_stack: StackReader) -> dict[str, Mapping[str, Any]]:
    """`org/project/stack` -> its outputs, for each peer whose `Pulumi.<stack>.yaml` is here (the
    program's stack reference fails, naming it, for one that is not). `read_stack(project_dir,
    stack)` reads a stack file as `mesh preview` does, raising on its errors."""
    peers = json.loads(config.get(f"{CONFIG_NAMESPACE}:peerStacks", "[]"))
    if not isinstance(peers, list):
        return {}  # the program reports the bad value with its key
    worlds: dict[Path, World | None] = {}
    outputs: dict[str, Mapping[str, Any]] = {}
    for reference in peers:
        stack = str(reference).rsplit("/", 1)[-1]
        if (project_dir / f"Pulumi.{stack}.yaml").is_file():
            _, values, _ = read_stack(project_dir, stack)
            outputs[str(reference)] = exports(project_dir, values, worlds)
    return outputs


def exports(project_dir: Path, values: Mapping[str, str], worlds: dict[Path, World | None]) -> dict[str, Any]:
    prefix = f"{CONFIG_NAMESPACE}:"
    plain = {k.removeprefix(prefix): v for k, v in values.items()
             if k.startswith(prefix) and k.removeprefix(prefix) not in SECRET_KEYS}
    try:
        config = parse_stack_config(decode_values(plain))
    except StackConfigError:
        return {}  # previewing that stack reports it
    manifest = manifest_path(project_dir, config.manifest)
    if manifest not in worlds:
        try:
            worlds[manifest] = load(manifest).world
        except (ManifestError, OSError):
            worlds[manifest] = None
    world = worlds[manifest]
    part = config.mesh_config_part
    root = config.root_ca_certificate or COMPUTED
    if world is None or (part is not None and part.part_only):
        return {"clusters": {}, "natAddresses": [], "natAddressesByRegion": {}, "rootCaCertificate": root}
    clusters: dict[str, Any] = {}
    regions: dict[str, dict[str, list[str]]] = {}
    for name in config.clusters or world.clusters:
        spec = world.clusters.get(name)
        if spec is None:
            continue
        pinned = spec.east_west
        clusters[name] = {
            "name": name, "managed": True, "dnsEndpoint": COMPUTED,
            "eastWest": {"external": (pinned.external if pinned else None) or COMPUTED,
                         "internal": (pinned.internal if pinned else None) or COMPUTED},
            "istioVersion": config.istio_version, "istioRevision": revision_label(config.istio_version),
            "istioRevisions": [revision_label(v) for v in config.installed_versions],
            "meshConfigParts": part.of if part is not None and part.cluster == name else 1,
        }
        regions.setdefault(spec.network, {})[spec.region] = [COMPUTED]
    return {"clusters": clusters, "natAddresses": [COMPUTED], "natAddressesByRegion": regions,
            "rootCaCertificate": root}
