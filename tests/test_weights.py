"""Weighted locations that fail over: locality weights (`distribute`), checked three ways.

- Istio's rules (mesh/locality_lb.py, ported from istio/istio release-1.31): what its webhook
  rejects, how `distribute` weighs locality groups;
- the example stack (search: core-use1-a 90, core-use1-b 10): the shares every caller gets with
  both clusters healthy, with either down, and after it recovers (mesh/simulate.py `shares`);
- a serving caller (the split from inside one of the service's clusters), with Envoy's
  overprovisioning: local pods keep their full share until fewer than 1/1.4 = 71.4 % are healthy.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mesh import locality_lb
from mesh.compile import compile_fleet
from mesh.manifest import load
from mesh.model import World
from mesh.simulate import Mesh, Outcome, Workload, facts_from_world, shares
from mesh.verify import verify

import manifests
import stack_fixture
from istio_schema import assert_valid

A, B = "core-use1-a", "core-use1-b"


# ------------------------------------------------------------------------------- Istio's rules

@pytest.mark.parametrize(("to", "problem"), [
    ({"us-east1/us-east1-b/a": 90, "us-east1/us-east1-b/b": 10}, None),
    ({"us-east1/*": 100}, None),
    ({"us-east1/*/a": 100}, "wildcard '*' number can not exceed 1 and must be in the end"),
    ({"us-east1//a": 100}, "must not contain empty region/zone/subzone info"),
    ({"us-east1": 50, "us-east1/us-east1-b/b": 50}, "overlap with previous specified ones"),
    ({"us-east1/us-east1-b": 50, "us-east1/us-east1-b/b": 50}, "overlap with previous specified ones"),
    ({"us-east1/us-east1-b/a": 50, "us-east1/us-east1-b/a/": 50}, None),  # SplitN(3): "a/" is its own subzone
    ({"a": 90, "b": 9}, "total locality weight 99 != 100"),
    ({"a": 100, "b": 0}, "locality weight must be in range [1, 100]"),
])
def test_istio_admission_rules_for_distribute(to: dict[str, int], problem: str | None) -> None:
    found = locality_lb.problems({"distribute": [{"from": "*", "to": to}]})
    assert [p for p in found if problem and problem in p] if problem else found == [], found
    for order in (to, dict(reversed(list(to.items())))):  # Istio walks a Go map: any order
        assert bool(locality_lb.problems({"distribute": [{"from": "*", "to": order}]})) == bool(problem)


def test_distribute_and_failover_are_exclusive() -> None:
    setting = {"distribute": [{"from": "*", "to": {"a": 100}}], "failover": [{"from": "a", "to": "b"}]}
    assert locality_lb.problems(setting) == ["can not simultaneously specify 'distribute' and 'failover'"]


def test_a_key_shares_its_weight_among_the_groups_it_matches_and_unmatched_groups_drop() -> None:
    groups = {("r", "z1", "a"): 3, ("r", "z2", "a"): 1, ("r", "z1", "b"): 1, ("q", "z", "c"): 1}
    weights = locality_lb.group_weights({"distribute": [{"from": "*", "to": {"r/z1": 60, "r/z2/a": 40}}]},
                                        ("q", "z", "c"), groups)
    assert weights == {("r", "z1", "a"): 45, ("r", "z1", "b"): 15, ("r", "z2", "a"): 40}  # ceil(60·3/4), ceil(60/4)
    assert locality_lb.group_weights({"distribute": [{"from": "x/*", "to": {"r": 100}}]}, ("q", "z", "c"),
                                     groups) is None, "no `from` matches the proxy: weights untouched"


# -------------------------------------------------------------------------- the example stack

@pytest.fixture(scope="module")
def prod() -> tuple[World, Mesh]:
    world = load(stack_fixture.STACK).world
    return world, Mesh(compile_fleet(world), facts_from_world(world))


def _call(world: World, mesh: Mesh, caller: str, cluster: str, callee: str) -> Outcome:
    spec, target = world.services[caller], world.services[callee]
    [call] = [c for c in world.callees(caller) if c.callee == callee]
    outcome = mesh.resolve(Workload(cluster, spec.namespace, spec.workload_labels, spec.service_account),
                           target.host, (call.ports or [p.number for p in target.ports])[0])
    assert outcome.works, outcome
    return outcome


@pytest.mark.parametrize("cluster", ["edge-euw1-a", "edge-use1-a", "edge-usw1-a"])
def test_search_splits_90_10_from_every_edge_and_a_down_cluster_s_share_moves(
        prod: tuple[World, Mesh], cluster: str) -> None:
    outcome = _call(*prod, "api-gateway", cluster, "search")
    assert shares(outcome) == {A: 90, B: 10}
    assert shares(outcome, down={A}) == {B: 100}
    assert shares(outcome, down={B}) == {A: 100}
    assert shares(outcome) == {A: 90, B: 10}, "back when it recovers"


def test_search_objects_carry_locality_weights_and_no_subsets(prod: tuple[World, Mesh]) -> None:
    world, _ = prod
    compiled = compile_fleet(world)
    search = [o for objects in compiled.values() for o in objects
              if o["metadata"]["labels"].get("fleet-mesh.io/service") == "search"]
    rules = [o for o in search if o["kind"] == "DestinationRule"]
    assert rules and all("subsets" not in r["spec"] for r in rules)
    assert {r["metadata"]["name"] for r in rules} == {"search"}
    assert all(r["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"] == {
        "enabled": True, "distribute": [{"from": "*", "to": {f"us-east1/us-east1-b/{A}": 90,
                                                            f"us-east1/us-east1-b/{B}": 10}}]} for r in rules)
    assert not [r for c in (A, B) for r in compiled[c] if r["kind"] == "DestinationRule"
                and r["metadata"]["name"] == "search"], "serving clusters need no rule: the SNI has no subset"
    assert_valid(search)


def test_plain_and_standby_keep_their_behaviour(prod: tuple[World, Mesh]) -> None:
    world, mesh = prod
    auth = _call(world, mesh, "payments", A, "auth")  # active-active, local pods first
    assert shares(auth) == {A: 100}
    assert shares(auth, down={A}) == {B: 100}, "then the other cluster in the region"
    ledger = _call(world, mesh, "payments", A, "ledger")  # primary / standby
    assert shares(ledger) == {"data-use1-a": 100}
    assert shares(ledger, down={"data-use1-a"}) == {"data-usw1-a": 100}


# ------------------------------------------------------------------------- a serving caller

ZONES = [("fleet.yaml", "    region: us-east1\n", "    region: us-east1\n    zones: [us-east1-b, us-east1-c]\n"),
         ("fleet.yaml", "    region: us-west1\n", "    region: us-west1\n    zones: [us-west1-a]\n")]
GAMMA = ("locations.yaml", "gamma: [c1, c2]", "gamma: [{cluster: c1, weight: 90}, {cluster: c2, weight: 10}]")


@pytest.fixture
def small(tmp_path: Path) -> tuple[World, Mesh, dict[str, list[dict[str, Any]]]]:
    world = load(manifests.write(tmp_path / "stack", manifests.edited([*ZONES, GAMMA]))).world
    compiled = compile_fleet(world)
    return world, Mesh(compiled, facts_from_world(world)), compiled


def test_inside_a_serving_cluster_the_split_holds_and_overprovisioning_delays_the_shift(
        small: tuple[World, Mesh, dict[str, list[dict[str, Any]]]]) -> None:
    world, mesh, _ = small
    outcome = _call(world, mesh, "beta", "c1", "gamma")  # beta runs in c1 (primary) and calls gamma
    assert sorted((e.locality, e.locality_weight) for e in outcome.endpoints) == [
        ("us-east1/us-east1-b/c1", 45), ("us-east1/us-east1-c/c1", 45), ("us-west1/us-west1-a/c2", 10)]
    assert shares(outcome) == {"c1": 90, "c2": 10}
    assert shares(outcome, down={"c2"}) == {"c1": 100}
    assert shares(outcome, down={"c1"}) == {"c2": 100}
    assert shares(outcome, healthy={"c1": 0.72}) == {"c1": 90, "c2": 10}, "≥ 71.4 % healthy: full share"
    half = shares(outcome, healthy={"c1": 0.5})  # availability 0.7: 63 against 10
    assert half == pytest.approx({"c1": 100 * 63 / 73, "c2": 100 * 10 / 73})
    from_c2 = _call(world, mesh, "beta", "c2", "gamma")
    assert shares(from_c2) == {"c1": 90, "c2": 10}, "the same split from the other cluster"


def test_verify_rejects_priorities_beside_weights_and_keys_istio_refuses(
        small: tuple[World, Mesh, dict[str, list[dict[str, Any]]]]) -> None:
    world, _, compiled = small
    assert verify(world, compiled) == []

    def broken(change: Any) -> list[str]:
        copied = copy.deepcopy(compiled)
        rule = next(o for o in copied["c1"] if o["kind"] == "DestinationRule" and o["metadata"]["name"] == "gamma")
        change(rule["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"])
        return verify(world, copied)

    assert any("priorities or subsets" in p for p in broken(lambda s: s.update(failoverPriority=["x"])))
    assert any("wildcard" in p for p in broken(lambda s: s["distribute"][0]["to"].update(
        {"us-east1/*/c1": s["distribute"][0]["to"].pop("us-east1/us-east1-b/c1")})))
    assert any("c2 gets locality weight 0, not its 10" in p
               for p in broken(lambda s: s["distribute"][0]["to"].update(
                   {"us-west1/us-west1-a/cX": s["distribute"][0]["to"].pop("us-west1/us-west1-a/c2")})))
