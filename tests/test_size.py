"""mesh size: what istiod holds and each proxy imports, counted from compiled objects before apply."""

from __future__ import annotations

from pathlib import Path

from mesh import size
from mesh.compile import compile_fleet
from mesh.manifest import load

import manifests


def sizes(tmp_path: Path, files: dict[str, str]) -> dict[str, size.ClusterSize]:
    world = load(manifests.write(tmp_path, files)).world
    return {s.name: s for s in size.measure(compile_fleet(world))}


def test_a_callers_proxy_counts_the_hosts_ports_and_remote_endpoints_it_imports(tmp_path: Path) -> None:
    e1 = sizes(tmp_path, manifests.BASE)["e1"]
    [alpha] = [w for w in e1.workloads if w.namespace == "alpha"]
    # alpha calls beta (1 port; primary c1, standby c2) and gamma (2 ports; c1, c2), none local:
    # two hosts, 1 + 2 upstream clusters, one remote endpoint per other cluster each.
    assert (alpha.hosts, alpha.envoy_clusters, alpha.remote_endpoints) == (2, 3, 4)
    assert alpha.proxy_mb == size.ENVOY_BASE_MB + 3 * size.ENVOY_PER_CLUSTER_KB / 1024
    assert e1.objects["ServiceEntry"] == e1.services == 3  # its own alpha, beta and gamma
    assert "Namespace" not in e1.objects  # Kubernetes holds those, not istiod


def test_a_new_call_grows_only_the_callers_numbers(tmp_path: Path) -> None:
    before = sizes(tmp_path / "a", manifests.BASE)
    after = sizes(tmp_path / "b", manifests.edited([("services/gamma.yaml", "", "calls: [beta.svc.test.example]\n")]))
    grown = {(c, w.namespace) for c in after for w in after[c].workloads
             if w not in before[c].workloads}
    assert grown == {("c1", "gamma"), ("c2", "gamma")}
    assert after["e1"].istiod_mb == before["e1"].istiod_mb  # alpha's cluster holds nothing new


def test_the_report_flags_the_largest_proxies_first(tmp_path: Path) -> None:
    text = size.report(list(sizes(tmp_path, manifests.BASE).values()))
    largest = text.split("largest proxies", 1)[1].splitlines()[2]
    assert largest.split()[0] == "e1/alpha"
    assert "envoy#5201" in text  # the estimate says where its numbers come from
