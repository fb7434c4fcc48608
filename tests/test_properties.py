"""Invariants over generated fleets, checked by following calls through the compiled objects.

- deterministic: the same manifest in any order compiles to identical objects and bytes;
- demand-driven: a cluster holds config for a service only if it runs it or runs a caller — in the
  service's namespace where it runs, else in the one `mesh-imports` — and a Namespace only where a
  service runs (plus `mesh-imports` where something is imported);
- complete: every declared call, from every cluster its caller runs in, on every port it names,
  reaches only clusters running the callee, is admitted there, and fails over as declared;
- least privilege: an identity is admitted only where and on the ports a call declares;
- ingress: a public request for a published service, at any cluster running it, reaches only
  clusters running it, local pods first, fails over as a mesh call would, and is admitted there;
  anywhere else, or for any other host, the ingress gateway routes nothing;
- egress: every declared external call, from every cluster its caller runs in, on every port it
  names, leaves the mesh (through the egress gateway exactly where the destination says so, with
  TLS originated exactly where it says so); a cluster without a caller holds nothing for it; and no
  namespace reaches an external host none of its services calls.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from mesh import render
from mesh.compile import compile_fleet, egress, ingress, meta
from mesh.diagnostics import Severity
from mesh.manifest import rules
from mesh.model import World
from mesh.simulate import Mesh, Outcome, Workload, authorized, facts_from_world, shares

from strategies import EXTERNALS, Manifest, external_host, manifests

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pods(world: World, service: str) -> list[Workload]:
    spec = world.services[service]
    return [Workload(c, spec.namespace, spec.workload_labels, spec.service_account)
            for c in world.clusters_of(service)]


@FAST
@given(manifests())
def test_generated_manifests_pass_every_rule(manifest: Manifest) -> None:
    errors = [p for p in rules.check(manifest.raw()) if p.severity is Severity.ERROR]
    assert errors == []


@FAST
@given(manifests())
def test_compiling_is_deterministic_whatever_the_input_order(manifest: Manifest) -> None:
    first = compile_fleet(manifest.world())
    again = compile_fleet(manifest.world(reverse=True))
    assert first == again
    assert [render.cluster_files(o) for o in first.values()] == [render.cluster_files(o) for o in again.values()]


@FAST
@given(manifests())
def test_clusters_hold_config_only_for_services_they_run_or_call(manifest: Manifest) -> None:
    world = manifest.world()
    for cluster, objects in compile_fleet(world).items():
        view = world.views[cluster]
        callers_here = set(view.local_callers)
        for obj in objects:
            service = obj["metadata"]["labels"].get("fleet-mesh.io/service")
            if service is None:
                continue
            runs = cluster in world.clusters_of(service)
            assert runs or service in callers_here, (cluster, obj["kind"], service)
            if obj["metadata"].get("namespace") != world.fleet.ingress_gateway.namespace:
                assert obj["metadata"]["namespace"] == (world.services[service].namespace if runs
                                                        else meta.IMPORTS_NAMESPACE), (cluster, obj["kind"], service)
            if obj["kind"] == "WorkloadEntry":
                assert runs and (service in callers_here or _published(world, service)), \
                    "endpoints only where the service is called, or published by the ingress here"
        namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
        external = {egress.EXTERNAL_NAMESPACE} if world.external_callers(cluster) else set()
        imports = {meta.IMPORTS_NAMESPACE} if set(view.needed) - set(view.running) else set()
        assert namespaces == {world.services[s].namespace for s in view.running} | imports | external, \
            "a Namespace only where a service runs, plus one for everything imported"
        gateways = [o for o in objects if o["kind"] == "Gateway" and o["metadata"]["namespace"] == "istio-system"]
        exposed = sorted(world.services[s].host for s in view.running if world.has_callers_elsewhere(s, cluster)
                         or (_published(world, s) and len(world.clusters_of(s)) > 1))
        assert [g["spec"]["servers"][0]["hosts"] for g in gateways] == ([exposed] if exposed else [])
        public = sorted(f"istio-ingress/{world.services[s].host}" for s in view.running if _published(world, s))
        ingress_gateways = [o for o in objects
                            if (o["kind"], o["metadata"].get("namespace")) == ("Gateway", "istio-ingress")]
        assert sorted(h for g in ingress_gateways for s in g["spec"]["servers"] for h in s["hosts"]) == public


def _published(world: World, service: str) -> bool:
    return ingress.published_port(world.services[service]) is not None


@FAST
@given(manifests())
def test_every_declared_call_works_from_every_caller_cluster(manifest: Manifest) -> None:
    world = manifest.world()
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    for call in world.calls:
        callee = world.services[call.callee]
        for pod in _pods(world, call.caller):
            for port in call.ports or [p.number for p in callee.ports]:
                outcome = mesh.resolve(pod, callee.host, port)
                assert outcome.works, (call, pod.cluster, port, outcome)
                assert outcome.clusters <= set(world.clusters_of(call.callee))
                _check_failover(world, call.callee, pod.cluster, outcome)


def _check_failover(world: World, service: str, caller_cluster: str, outcome: object) -> None:
    endpoints = outcome.endpoints  # type: ignore[attr-defined]
    placements = world.placements[service]
    if world.is_weighted(service):
        assert {e.priority for e in endpoints} == {0}, "locality weights, no priorities"
        _close(shares(outcome), {p.cluster: p.weight or 0 for p in placements})  # type: ignore[arg-type]
    elif world.has_standby(service):
        primary = [e.priority for e in endpoints if world.role_in(service, e.cluster) == "primary"]
        standby = [e.priority for e in endpoints if world.role_in(service, e.cluster) == "standby"]
        assert primary and (not standby or max(primary) < min(standby)), "standbys only after primaries"
    else:
        assert {e.cluster for e in endpoints} == {p.cluster for p in placements}
        if caller_cluster in world.clusters_of(service):
            assert [e.cluster for e in endpoints if e.priority == 0] == [caller_cluster]


def _close(got: dict[str, float], wanted: dict[str, float], points: float = 2) -> None:
    """Shares within `points` of the wanted ones; clusters wanting nothing get nothing."""
    assert {c for c, v in got.items() if v} == {c for c, v in wanted.items() if v}, (got, wanted)
    assert all(abs(got.get(c, 0) - v) <= points for c, v in wanted.items()), (got, wanted)


def _weighted_calls(world: World, mesh: Mesh) -> list[tuple[str, str, Outcome]]:
    """(service, caller cluster, outcome) for every call to a weighted service, from everywhere."""
    out = []
    for call in world.calls:
        if world.is_weighted(call.callee):
            callee = world.services[call.callee]
            for pod in _pods(world, call.caller):
                port = (call.ports or [p.number for p in callee.ports])[0]
                out.append((call.callee, pod.cluster, mesh.resolve(pod, callee.host, port)))
    return out


@FAST
@given(manifests())
def test_a_weighted_split_holds_from_every_caller_and_a_down_cluster_s_share_is_spread_by_weight(
        manifest: Manifest) -> None:
    world = manifest.world()
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    for service, caller, outcome in _weighted_calls(world, mesh):
        weights = {p.cluster: p.weight or 0 for p in world.placements[service]}
        healthy = shares(outcome)
        _close(healthy, weights)  # from every caller cluster, its own locality notwithstanding
        for down, weight in weights.items():
            rest = {c: w for c, w in weights.items() if c != down}
            if not weight:
                assert shares(outcome, {down}) == healthy, "a weight-0 cluster is missed by nobody"
            elif not any(rest.values()):
                assert shares(outcome, {down}) == {}, (service, caller, "only weight-0 clusters are left")
            else:
                expected = {c: 100 * healthy.get(c, 0) / (100 - healthy[down]) for c in rest}
                _close(shares(outcome, {down}), expected, points=0.01)  # exactly in proportion
                _close(shares(outcome, {down}), {c: 100 * w / (100 - weight) for c, w in rest.items()},
                       points=4)  # ≈ the manifest's weights among the rest
        assert shares(outcome) == healthy, "a recovered cluster gets its share back"


@FAST
@given(manifests())
def test_a_weighted_split_is_the_same_from_every_caller_cluster(manifest: Manifest) -> None:
    world = manifest.world()
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    seen: dict[str, dict[str, float]] = {}
    for service, caller, outcome in _weighted_calls(world, mesh):
        first = seen.setdefault(service, shares(outcome))
        # within a point per zone of the caller's own cluster (a zone needs at least 1 point)
        zones = len(world.clusters[caller].zones) if world.role_in(service, caller) else 1
        _close(shares(outcome), first, points=2 * max(zones, 1))


@FAST
@given(manifests())
def test_every_published_service_is_reachable_at_each_ingress_it_runs_behind(manifest: Manifest) -> None:
    world = manifest.world()
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    for service in world.services.values():
        for cluster in world.clusters:
            outcome = mesh.resolve_ingress(cluster, service.host)
            if not _published(world, service.name) or cluster not in world.clusters_of(service.name):
                assert outcome.refused, (service.name, cluster, outcome)
                continue
            assert outcome.works, (service.name, cluster, outcome)
            assert outcome.clusters <= set(world.clusters_of(service.name))
            _check_failover(world, service.name, cluster, outcome)


@FAST
@given(manifests())
def test_the_ingress_gateway_is_admitted_only_on_published_ports(manifest: Manifest) -> None:
    world = manifest.world()
    compiled = compile_fleet(world)
    principal = "test.example/ns/istio-ingress/sa/istio-ingressgateway"
    for service in world.services.values():
        published = ingress.published_port(service)
        for pod in _pods(world, service.name):
            policies = [o for o in compiled[pod.cluster] if o["kind"] == "AuthorizationPolicy"]
            for port in service.ports:
                assert authorized(policies, pod, principal, port.number) == (port == published), \
                    (service.name, pod.cluster, port)


@FAST
@given(manifests())
def test_only_declared_callers_are_admitted_and_only_on_their_ports(manifest: Manifest) -> None:
    world = manifest.world()
    compiled = compile_fleet(world)
    declared = {(c.caller, c.callee): c.ports for c in world.calls}
    for callee in world.services.values():
        ports = [p.number for p in callee.ports]
        for caller in world.services.values():
            principal = f"test.example/ns/{caller.namespace}/sa/{caller.service_account}"
            allowed_ports = declared.get((caller.name, callee.name), ())
            allowed_ports = ports if allowed_ports is None else allowed_ports
            for pod in _pods(world, callee.name):
                policies = [o for o in compiled[pod.cluster] if o["kind"] == "AuthorizationPolicy"]
                for port in ports:
                    assert authorized(policies, pod, principal, port) == (port in allowed_ports), \
                        (caller.name, callee.name, pod.cluster, port)


@FAST
@given(manifests())
def test_undeclared_hosts_are_not_reachable_from_a_namespace(manifest: Manifest) -> None:
    world = manifest.world()
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    for cluster, view in world.views.items():
        for caller in view.running:
            namespace = world.services[caller].namespace
            neighbours = [s for s in view.running if world.services[s].namespace == namespace]
            reachable = {c.callee for s in neighbours for c in world.callees(s)}
            for callee in world.services.values():
                if callee.name in reachable:
                    continue
                pod = Workload(cluster, namespace, world.services[caller].workload_labels, caller)
                assert mesh.resolve(pod, callee.host, callee.ports[0].number).refused, (caller, callee.name)


@FAST
@given(manifests())
def test_every_declared_external_call_leaves_the_mesh_from_every_caller_cluster(manifest: Manifest) -> None:
    world = manifest.world()
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    for call in world.external_calls:
        external = world.externals[call.external]
        for pod in _pods(world, call.caller):
            for port in call.ports or [p.number for p in external.ports]:
                outcome = mesh.resolve_external(pod, external_host(external.name), port)
                assert outcome.works, (call, pod.cluster, port, outcome)
                assert outcome.via_gateway == external.egress_gateway
                spec = next(p for p in external.ports if p.number == port)
                originated = external.originate_tls and spec.protocol == "HTTP"
                assert outcome.tls_originated == originated
                assert outcome.port == ((spec.target_port or 443) if originated else port)


@FAST
@given(manifests())
def test_a_cluster_without_a_caller_holds_nothing_for_an_external(manifest: Manifest) -> None:
    world = manifest.world()
    for cluster, objects in compile_fleet(world).items():
        called = set(world.external_callers(cluster))
        for obj in objects:
            name = obj["metadata"]["labels"].get(egress.EXTERNAL_LABEL)
            assert name is None or name in called, (cluster, obj["kind"], name)
            if obj["metadata"].get("namespace") == egress.EGRESS_NAMESPACE:
                assert any(world.externals[n].egress_gateway for n in called), (cluster, obj["kind"])
        assert (cluster in egress.gateway_clusters(world)) == any(world.externals[n].egress_gateway for n in called)


@FAST
@given(manifests())
def test_no_namespace_reaches_an_external_host_it_does_not_call(manifest: Manifest) -> None:
    world = manifest.world()
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    for cluster, view in world.views.items():
        for caller in view.running:
            spec = world.services[caller]
            neighbours = {s for s in view.running if world.services[s].namespace == spec.namespace}
            calling = {c.external for c in world.external_calls if c.caller in neighbours}
            pod = Workload(cluster, spec.namespace, spec.workload_labels, spec.service_account)
            for external, host in EXTERNALS:
                if external.name in calling:
                    continue
                for port in external.ports:
                    assert not mesh.resolve_external(pod, host, port.number).works, (caller, external.name)
            assert not mesh.resolve_external(pod, "evil.example.com", 443).works


@FAST
@given(manifests())
def test_the_egress_gateway_admits_only_declared_callers(manifest: Manifest) -> None:
    world = manifest.world()
    compiled = compile_fleet(world)
    for cluster in egress.gateway_clusters(world):
        gateway = next(g for g in facts_from_world(world).egress_gateways if g.cluster == cluster)
        policies = [o for o in compiled[cluster] if o["kind"] == "AuthorizationPolicy"]
        for name, external in world.externals.items():
            if not external.egress_gateway:
                continue
            [host] = external.hosts
            callers = {c.caller for c in world.external_callers(cluster).get(name, ())}
            for service in world.services.values():
                principal = f"test.example/ns/{service.namespace}/sa/{service.service_account}"
                admitted = any(authorized(policies, gateway, principal, port, sni=host) for port in (80, 443))
                assert admitted == (service.name in callers), (cluster, name, service.name)
                assert not authorized(policies, gateway, principal, 443, sni="other.example.com")
