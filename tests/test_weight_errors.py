"""The weighted-location rule of mesh/manifest/weight_rules.py: `file:line: field` and the message.

The split is per zone (mesh/compile/weights.py), so every cluster of a weighted service must list
its zones. The small manifest of tests/manifests.py has zoneless c1 and c2 and a zonal e1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.compile import compile_fleet
from mesh.manifest import ManifestError, load
from mesh.verify import verify

import manifests

L, F = "locations.yaml", "fleet.yaml"
WEIGHTED = (L, "gamma: [c1, c2]", "gamma:\n  - {cluster: c1, weight: 90}\n  - {cluster: c2, weight: 10}")
ZONE_C1 = (F, "    region: us-east1\n", "    region: us-east1\n    zones: [us-east1-b, us-east1-c]\n")
ZONE_C2 = (F, "    region: us-west1\n", "    region: us-west1\n    zones: [us-west1-a]\n")


def _line(text: str, marker: str) -> int:
    return text.count("\n", 0, text.index(marker)) + 1


@pytest.mark.parametrize(("edits", "missing"), [
    ([WEIGHTED, ZONE_C1], ["c2"]),
    ([WEIGHTED, ZONE_C2], ["c1"]),
    ([WEIGHTED], ["c1", "c2"]),
], ids=["one-zoneless", "other-zoneless", "both-zoneless"])
def test_a_weighted_service_s_clusters_must_list_their_zones(
        tmp_path: Path, edits: list[tuple[str, str, str]], missing: list[str]) -> None:
    files = manifests.edited(edits)
    with pytest.raises(ManifestError) as caught:
        load(manifests.write(tmp_path / "stack", files))
    rendered = [d.render().split("/stack/", 1)[1] for d in caught.value.diagnostics
                if d.reason == "weight-without-zones"]
    expected = [
        f"{L}:{_line(files[L], f'cluster: {c}, weight')}: gamma[{i}].cluster: cluster {c!r} runs weighted "
        f"service 'gamma' but lists no zones; add its zones in fleet.yaml (weights are split per zone)"
        for i, c in enumerate(["c1", "c2"]) if c in missing]
    assert rendered == expected


def test_zones_make_the_weighted_manifest_valid_and_its_output_verify(tmp_path: Path) -> None:
    world = load(manifests.write(tmp_path / "stack", manifests.edited([WEIGHTED, ZONE_C1, ZONE_C2]))).world
    assert verify(world, compile_fleet(world)) == []


def test_plain_and_role_locations_need_no_zones(tmp_path: Path) -> None:
    load(manifests.write(tmp_path / "stack", manifests.edited([])))  # c1, c2 zoneless: still valid
