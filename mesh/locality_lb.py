"""What Istio and Envoy do with a DestinationRule's `localityLbSetting.distribute`, as plain functions.

Checker-side: `verify` asks whether a setting passes Istio's admission rules, `simulate` asks how the
weights land on locality groups and how Envoy then shares calls among them. Nothing here knows the
compiler; each function names the source it follows (istio/istio release-1.31, Envoy's docs).

- `problems` — `ValidateLocalityLbSetting` / `validateLocalities` / `getLocalityParam`
  (pkg/config/validation/agent/validation.go:530-723): `distribute` and `failover` exclusive; `to`
  weights in [1, 100] summing to 100; at most one `*` and only at the end; no empty part; keys
  that do not overlap.
- `matches` — `util.LocalityMatch` (pilot/pkg/networking/util/util.go:332): a missing or `*` part
  matches anything.
- `group_weights` — `applyLocalityWeights` (pilot/pkg/networking/core/loadbalancer/loadbalancer.go:417-476):
  the first `from` matching the proxy wins; each `to` key's weight is shared by the groups it
  matches in proportion to their own weight (the endpoint count, endpoint_builder.go:552-561),
  rounded up; groups matching no key lose their endpoints. `distribute` wins over any failover
  (loadbalancer.go:396-413), so every group stays at priority 0.
- `shares` — Envoy's locality-weighted load balancing, which Istio turns on whenever `distribute`
  is set (loadbalancer.go:146-152): effective weight = weight × availability, availability =
  min(1, 1.4 × healthy fraction) (overprovisioning factor 1.4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from math import ceil
from typing import Any

OVERPROVISIONING = 1.4
Locality = tuple[str, str, str]  # region, zone, subzone ("" where absent)


def split(locality: str) -> Locality:
    """`region/zone/subzone` → its three parts, missing ones empty (`label.SplitLocalityLabel`)."""
    parts = (locality.split("/", 2) + ["", ""])[:3]
    return parts[0], parts[1], parts[2]


def matches(locality: Locality, rule: str) -> bool:
    region, zone, subzone = split(rule)
    return (region == "*" or locality[0] == region) and zone in ("*", "", locality[1]) \
        and subzone in ("*", "", locality[2])


def problems(setting: Mapping[str, Any]) -> list[str]:
    """Why Istio's admission webhook would reject this localityLbSetting (empty: it accepts it)."""
    out: list[str] = []
    distribute = setting.get("distribute") or []
    if distribute and setting.get("failover"):
        return ["can not simultaneously specify 'distribute' and 'failover'"]
    for entry in distribute:
        to = entry.get("to") or {}
        if any(not 1 <= weight <= 100 for weight in to.values()):
            return out + ["locality weight must be in range [1, 100]"]
        if sum(to.values()) != 100:
            return out + [f"total locality weight {sum(to.values())} != 100"]
        out += _locality_problems(list(to))
    out += _locality_problems([entry.get("from", "") for entry in distribute])
    return out


def _locality_problems(localities: Sequence[str]) -> list[str]:
    """`validateLocalities`: the first problem, as Istio reports only that one. Istio walks a Go
    map (random order); the checks are symmetric, so any order finds an overlap."""
    seen: dict[str, dict[str, set[str]]] = {}
    for locality in localities:
        stars = locality.count("*")
        if stars > 1 or (stars and not locality.endswith("*")):
            return [f"locality {locality} wildcard '*' number can not exceed 1 and must be in the end"]
        if "*" in seen:
            return [f"locality {locality} overlap with previous specified ones"]
        items = locality.split("/", 2)
        if any(item == "" for item in items):
            return [f"locality {locality} must not contain empty region/zone/subzone info"]
        region = items[0]
        zones = seen.get(region)
        overlap = False
        if len(items) == 1:
            overlap = zones is not None
            seen[region] = {"*": {"*"}}
        elif zones is None:
            seen[region] = {items[1]: {items[2] if len(items) == 3 else "*"}}
        elif "*" in zones:
            overlap = True
        elif len(items) == 2:
            overlap = items[1] in zones
            zones[items[1]] = {"*"}
        else:
            subzones = zones.setdefault(items[1], set())
            overlap = "*" in subzones or items[2] in subzones
            subzones.add(items[2])
        if overlap:
            return [f"locality {locality} overlap with previous specified ones"]
    return []


def group_weights(setting: Mapping[str, Any], proxy: Locality, groups: Mapping[Locality, int]
                  ) -> dict[Locality, int] | None:
    """Locality group → the weight Istio gives it for a proxy at `proxy`; groups left out lose their
    endpoints. None where no `distribute` entry applies (the groups keep their own weights)."""
    for entry in setting.get("distribute") or []:
        if not matches(proxy, entry.get("from", "")):
            continue
        out: dict[Locality, int] = {}
        unmatched = dict(groups)
        for rule, weight in entry.get("to", {}).items():
            matched = {g: w for g, w in unmatched.items() if matches(g, rule)}
            total = sum(matched.values())
            for group, own in matched.items():
                del unmatched[group]
                if own * weight:
                    out[group] = ceil(own * weight / total)
        return out
    return None


def availability(healthy: float) -> float:
    """Envoy's locality availability for a healthy fraction of its hosts."""
    return min(1.0, OVERPROVISIONING * healthy)


def shares(groups: Iterable[tuple[str, int, float]]) -> dict[str, float]:
    """(owner, locality weight, healthy fraction) per group of one priority → percent of calls per
    owner: effective weight = weight × availability, normalised. Empty when nothing is available."""
    effective: dict[str, float] = {}
    for owner, weight, healthy in groups:
        effective[owner] = effective.get(owner, 0.0) + weight * availability(healthy)
    total = sum(effective.values())
    return {owner: 100 * value / total for owner, value in sorted(effective.items())} if total else {}
