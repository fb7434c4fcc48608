"""Rules for weighted locations beyond their sum: what the locality-weight split needs of a cluster.

A weighted service is split by Istio locality weights, one key per zone of each of its clusters
(mesh/compile/weights.py), and Istio accepts no key of the form `region/*/cluster`. So each cluster
running a weighted service must list its zones in fleet.yaml: the zones its node pools use, hence
the localities its pods report. The problem points at the location, where the platform engineer
decides to weight the service; the fix is in fleet.yaml (named in the message).
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.diagnostics import Problem
from mesh.manifest import schema
from mesh.manifest.load import RawManifest


def check(raw: RawManifest, fleet: schema.Fleet) -> Iterator[Problem]:
    zones = {cluster.name: cluster.zones for cluster in fleet.clusters}
    fleet_file = raw.fleet_origin.file.name
    for name, locations in raw.locations.items():
        if not any(location.weight is not None for location in locations):
            continue
        for i, location in enumerate(locations):
            if location.weight is not None and zones.get(location.cluster) == []:
                yield raw.locations_origin.problem(
                    f"cluster {location.cluster!r} runs weighted service {name!r} but lists no zones; "
                    f"add its zones in {fleet_file} (weights are split per zone)",
                    "weight-without-zones", name, i, "cluster",
                )
