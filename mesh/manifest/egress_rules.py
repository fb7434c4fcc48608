"""Rules for destinations outside the mesh (fleet.yaml `externals`) and the calls to them.

`split` runs first: calls to hosts outside every mesh domain are this module's to judge (approved, from
an approved tier, on a declared port — or not approved at all), so it hands the other rules a manifest
in which those hosts count as declared elsewhere (no "unknown host", no costly "did you mean" among
mesh hosts), and returns its own problems to report with theirs. Every rule points at the node to edit.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from mesh.diagnostics import Problem
from mesh.manifest import schema
from mesh.manifest.load import Origin, RawManifest

# Namespaces the egress path owns: the externals' config, and the egress gateway's install.
EXTERNAL_NAMESPACE = "mesh-external"
EGRESS_NAMESPACE = "istio-egress"


def split(raw: RawManifest) -> tuple[RawManifest, list[Problem]]:
    """(the manifest for the other rules, the egress problems). Without a valid fleet nothing outside
    the mesh can be judged (approvals live there): the other rules then see every call as it is."""
    fleet = raw.fleet
    if fleet is None:
        return raw, []
    mesh_hosts = {entry.service.host for entry in raw.services} | set(raw.invalid.hosts)
    outside = {call.host for entry in raw.services for call in entry.service.calls
               if call.host not in mesh_hosts and _mesh_domain(fleet, call.host) is None}
    problems = list(_check_externals(fleet, raw.fleet_origin)) + list(_check_calls(raw, fleet, outside))
    if outside:
        raw = dataclasses.replace(raw, invalid=dataclasses.replace(raw.invalid, hosts=raw.invalid.hosts | outside))
    return raw, problems


# ------------------------------------------------------------------------------------ the fleet


def _check_externals(fleet: schema.Fleet, origin: Origin) -> Iterator[Problem]:
    names: dict[str, int] = {}
    for i, external in enumerate(fleet.externals):
        at = origin.at("externals", i)
        if external.name in names:
            yield at.problem(f"duplicate external name {external.name!r} (first declared as externals"
                             f"[{names[external.name]}])", "duplicate-external", "name")
        names.setdefault(external.name, i)
        for j, tier in enumerate(external.tiers):
            if tier not in fleet.tiers:
                yield at.problem(f"unknown tier {tier!r}; declared tiers: {', '.join(sorted(fleet.tiers))}",
                                 "unknown-tier", "tiers", j)
        for j, host in enumerate(external.hosts):
            domain = _mesh_domain(fleet, host)
            if domain is not None:
                yield at.problem(f"{host} is inside the mesh domain {domain}: mesh hosts are services, "
                                 "declared in services/", "external-in-mesh-domain", "hosts", j)
        yield from _check_shape(external, at)
    yield from _check_overlaps(fleet, origin)
    yield from _check_addresses(fleet, origin)


def _check_shape(external: schema.External, at: Origin) -> Iterator[Problem]:
    wildcard = any(h.startswith("*.") for h in external.hosts)
    for number, count in sorted(Counter(p.number for p in external.ports).items()):
        if count > 1:
            yield at.problem(f"duplicate port number {number}", "duplicate-port-number", "ports")
    if external.egress_gateway:
        if len(external.hosts) != 1 or wildcard:
            yield at.problem("a destination through the egress gateway names exactly one exact host (the gateway "
                             "routes by it); declare one external per host", "egress-gateway-host", "hosts")
        if external.addresses:
            yield at.problem("a destination through the egress gateway is resolved by DNS at the gateway; fixed "
                             "addresses are for destinations the sidecar reaches itself", "egress-gateway-addresses",
                             "addresses")
        kinds = Counter(p.protocol == "HTTP" for p in external.ports)
        if max(kinds.values()) > 1:
            yield at.problem("through the egress gateway, a host has at most one HTTP port and one TLS/HTTPS/TCP "
                             "port (the gateway tells them apart by its own port)", "egress-gateway-ports", "ports")
    http = [p for p in external.ports if p.protocol == "HTTP"]
    if external.originate_tls and not http:
        yield at.problem("originateTls needs an HTTP port: the port callers dial in plain HTTP", "originate-tls-port",
                         "originateTls")
    if external.originate_tls and wildcard:
        yield at.problem("originateTls needs exact hosts: TLS is originated with the host as SNI",
                         "originate-tls-host", "hosts")
    for k, port in enumerate(external.ports):
        if port.target_port is not None and not (external.originate_tls and port.protocol == "HTTP"):
            yield at.problem("targetPort is the port TLS is originated to: only for HTTP ports with originateTls",
                             "target-port", "ports", k, "targetPort")
        if port.protocol == "TCP" and wildcard and not external.addresses:
            yield at.problem(f"TCP port {port.number} on a wildcard host needs fixed addresses: opaque TCP cannot "
                             "be told apart by name", "external-tcp-wildcard", "ports", k)


def _mesh_domain(fleet: schema.Fleet, host: str) -> str | None:
    suffix = host[1:] if host.startswith("*.") else None
    for domain in fleet.domains:
        if host == domain or host.endswith("." + domain):
            return domain
        if suffix is not None and ("." + domain).endswith(suffix):
            return domain  # the wildcard covers the whole mesh domain
    return None


def _covers(pattern: str, host: str) -> bool:
    """Does host entry `pattern` match every name `host` stands for (both may be wildcards)?"""
    if not pattern.startswith("*."):
        return pattern == host
    return host.endswith(pattern[1:])


def _check_overlaps(fleet: schema.Fleet, origin: Origin) -> Iterator[Problem]:
    """Each name reaches one external: no duplicate hosts, no wildcard covering another entry."""
    seen: list[tuple[str, str]] = []  # (host entry, where)
    for i, external in enumerate(fleet.externals):
        for j, host in enumerate(external.hosts):
            for other, where in seen:
                if _covers(other, host) or _covers(host, other):
                    yield origin.problem(f"{host} overlaps {other} ({where}): each name must lead to one "
                                         "external", "external-host-overlap", "externals", i, "hosts", j)
                    break
            seen.append((host, f"externals[{i}] {external.name!r}"))


def _check_addresses(fleet: schema.Fleet, origin: Origin) -> Iterator[Problem]:
    """A fixed address inside the fleet's own ranges would make mesh traffic look external (and back)."""
    ranges = [(ipaddress.IPv4Network(getattr(c.ip_ranges, field)), f"{c.name} {field}")
              for c in fleet.clusters if c.ip_ranges for field in ("nodes", "pods", "services", "control_plane")]
    for i, external in enumerate(fleet.externals):
        for j, address in enumerate(external.addresses):
            network = ipaddress.IPv4Network(address)
            clash = next((owner for other, owner in ranges if network.overlaps(other)), None)
            if clash:
                owner = clash.replace("control_plane", "controlPlane")
                yield origin.problem(f"{address} overlaps the fleet's own range {owner}",
                                     "external-address-overlap", "externals", i, "addresses", j)


# ------------------------------------------------------------------------------------ the calls


CallKey = tuple[Path, int, tuple[str | int, ...]]  # (file, document, node path) of a call's host


def _external_calls(raw: RawManifest, fleet: schema.Fleet
                    ) -> Iterator[tuple[CallKey, tuple[int, int, schema.External]]]:
    """((file, document, path of the call's host), (service index, call index, external)) per call that
    names an approved external."""
    mesh_hosts = {entry.service.host for entry in raw.services} | set(raw.invalid.hosts)
    for s, entry in enumerate(raw.services):
        for i, call in enumerate(entry.service.calls):
            if call.host in mesh_hosts:
                continue
            external = _match(fleet, call.host)
            if external is not None:
                origin = entry.origin
                yield (origin.file, origin.document, origin.path + ("calls", i, "host")), (s, i, external)


def _match(fleet: schema.Fleet, host: str) -> schema.External | None:
    exact = next((e for e in fleet.externals if host in e.hosts), None)
    if exact is not None:
        return exact
    wild = [(len(h), e) for e in fleet.externals for h in e.hosts if h.startswith("*.") and host.endswith(h[1:])]
    return max(wild, key=lambda t: t[0])[1] if wild else None


def _check_calls(raw: RawManifest, fleet: schema.Fleet, outside: set[str]) -> Iterator[Problem]:
    reserved = {EXTERNAL_NAMESPACE, EGRESS_NAMESPACE}
    for entry in raw.services:
        if entry.service.namespace in reserved:
            yield entry.origin.problem(f"namespace {entry.service.namespace!r} belongs to the platform's egress "
                                       "path; give the service its own", "reserved-namespace", "namespace")
    for _, (s, i, external) in _external_calls(raw, fleet):
        entry = raw.services[s]
        service, at, call = entry.service, entry.origin, entry.service.calls[i]
        if not external.all_workloads and service.tier not in external.tiers and service.tier in fleet.tiers:
            yield at.problem(f"tier {service.tier!r} may not call external {external.name!r} ({call.host}; "
                             f"externals {external.name}.tiers: [{', '.join(external.tiers)}])",
                             "external-tier", "calls", i, "host")
        if call.port is not None and call.port not in {p.number for p in external.ports}:
            ports = ", ".join(f"{p.number} ({p.protocol})" for p in external.ports)
            yield at.problem(f"external {external.name!r} ({call.host}) has no port {call.port}; its ports: {ports}",
                             "unknown-port", "calls", i, "port")
    # Hosts outside the mesh and not approved: say where destinations are approved.
    for entry in raw.services:
        for i, call in enumerate(entry.service.calls):
            if call.host in outside and _match(fleet, call.host) is None:
                # A mesh host with a typo in its domain lands here: offer the mesh host it resembles.
                close = difflib.get_close_matches(call.host, sorted(s.service.host for s in raw.services), n=1,
                                                  cutoff=0.9)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                yield entry.origin.problem(
                    f"{call.host} is outside the mesh and not an approved external destination; the platform "
                    f"approves destinations in fleet.yaml `externals`{hint}", "external-not-approved", "calls", i,
                    "host")
