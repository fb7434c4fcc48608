"""The Istio control plane component on its own, under Pulumi's mock engine: canary revisions, the
ingress gateway, ordering; and, where Istio's charts are available, that two istiod revisions render
without a single object in common.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format  # type: ignore[import-untyped]
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import wait_for_rpcs
from test_charts import Rendered, pod_labels, render, requires_charts

from mesh import preview
from mesh.infra import istio_values
from mesh.infra.control_plane import ChartSource, ControlPlaneArgs, IngressArgs, IstioControlPlane
from mesh.infra.pki import ClusterCa

OLD, NEW = "1.31.1", "1.32.0"
RELEASE = "kubernetes:helm.sh/v3:Release"


@dataclass(frozen=True)
class Registered:
    urn: str
    type: str
    name: str
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


class _Monitor(pulumi_mocks.MockMonitor):
    """Records dependencies too, which mock arguments omit."""

    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.registered: list[Registered] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.registered.append(Registered(response.urn, request.type, request.name, tuple(request.dependencies),
                                          preview._wire(json_format.MessageToDict(request.object))))
        return response


def args(**overrides: Any) -> ControlPlaneArgs:
    """Plain values only: Outputs must be made inside the mocked run's event loop."""
    pem = pulumi.Output.from_input("-----BEGIN CERTIFICATE-----")
    values: dict[str, Any] = {
        "cluster": "c1", "network": "c1", "mesh_id": "mesh", "trust_domain": "td.example",
        "versions": (OLD, NEW), "version": OLD, "charts": ChartSource("https://blob.istio.io/istio-release/charts"),
        "ca": ClusterCa(pem, pulumi.Output.secret("key"), pem, pem), "size": "medium", "zonal": False,
        "external_address": "203.0.113.10", "east_west_sources": ["198.51.100.0/24"],
        "internal_address": "10.10.0.100", "internal_sources": ["10.11.0.0/20", "10.68.0.0/14"],
        "ingress": IngressArgs("istio-ingress", "ingress-sa", "203.0.113.20", ["192.0.2.0/24"]),
    }
    values.update(overrides)
    return ControlPlaneArgs(**values)


@dataclass
class Run:
    component: IstioControlPlane
    registered: list[Registered]
    ready: list[str]  # URNs of component.ready

    def named(self, name: str) -> Registered:
        (found,) = [r for r in self.registered if r.name == name]
        return found

    def of_type(self, kind: str) -> list[Registered]:
        return [r for r in self.registered if r.type == kind]


def run_component(**overrides: Any) -> Run:
    async def main() -> Run:
        settings = pulumi.runtime.settings.SETTINGS
        settings.rpc_manager.clear()
        monitor = _Monitor()
        pulumi.runtime.set_mocks(_Mocks(), project="fleet-mesh", stack="test", preview=False, monitor=monitor)
        component = IstioControlPlane("c1", args(**overrides))
        await wait_for_rpcs()
        return Run(component, monitor.registered, sorted([str(await r.urn.future()) for r in component.ready]))

    found = asyncio.run(main())
    assert found.registered, "nothing registered: the mocks were not in effect"
    return found


@pytest.fixture(scope="module")
def canary() -> Run:
    return run_component()


# ------------------------------------------------------------------------------- mock engine


def test_one_istiod_release_per_revision(canary: Run) -> None:
    releases = {r.name: r for r in canary.of_type(RELEASE)}
    for version in (OLD, NEW):
        revision = istio_values.revision_label(version)
        istiod = releases[f"c1-istiod-{revision}"]
        assert istiod.inputs["name"] == f"istiod-{revision}"
        assert istiod.inputs["version"] == version and istiod.inputs["chart"] == "istiod"
        assert istiod.inputs["values"]["revision"] == revision
        assert istiod.inputs["values"]["revisionTags"] == []
        # both use the one cacerts (one intermediate per cluster, whatever the revision)
        assert canary.named("c1-cacerts").urn in istiod.dependencies
        assert releases["c1-istio-base"].urn in istiod.dependencies
    assert sorted(n for n in releases if "istiod" in n) == ["c1-istiod-1-31-1", "c1-istiod-1-32-0"]
    assert canary.ready == sorted(releases[f"c1-istiod-{r}"].urn for r in ("1-31-1", "1-32-0"))
    assert canary.component.revision == "1-31-1"


def test_base_is_the_newest_and_validates_for_the_serving_revision(canary: Run) -> None:
    base = canary.named("c1-istio-base")
    assert base.inputs["version"] == NEW  # CRDs move forward only
    assert base.inputs["values"]["defaultRevision"] == "1-31-1"
    assert base.dependencies == (canary.named("c1-istio-system").urn,)  # CRDs need no CA: shorter chain
    for istiod in ("c1-istiod-1-31-1", "c1-istiod-1-32-0"):  # istiod needs both: no self-signed CA
        assert {base.urn, canary.named("c1-cacerts").urn} <= set(canary.named(istiod).dependencies)


def test_gateways_follow_the_serving_version(canary: Run) -> None:
    serving = canary.named("c1-istiod-1-31-1").urn
    for name in ("c1-eastwest", "c1-ingress"):
        gateway = canary.named(name)
        assert gateway.inputs["version"] == OLD and gateway.inputs["values"]["revision"] == "1-31-1"
        assert serving in gateway.dependencies, name
        assert gateway.inputs["values"]["service"] == {"type": "None"}
    # after the switch, both move to the new revision
    switched = run_component(version=NEW)
    for name in ("c1-eastwest", "c1-ingress"):
        gateway = switched.named(name)
        assert gateway.inputs["values"]["revision"] == "1-32-0"
        assert switched.named("c1-istiod-1-32-0").urn in gateway.dependencies
    assert switched.named("c1-istio-base").inputs["values"]["defaultRevision"] == "1-32-0"


def test_ingress_gateway_namespace_account_and_load_balancer(canary: Run) -> None:
    namespace = canary.named("c1-istio-ingress")
    assert namespace.inputs["metadata"] == {"name": "istio-ingress", "labels": {"istio.io/rev": "1-31-1"}}
    assert sorted(canary.component.namespaces) == ["istio-ingress", "istio-system"]
    release = canary.named("c1-ingress")
    assert release.inputs["name"] == "istio-ingressgateway" and release.inputs["namespace"] == "istio-ingress"
    assert release.inputs["values"]["serviceAccount"] == {"create": True, "name": "ingress-sa"}
    assert namespace.urn in release.dependencies
    service = canary.named("c1-ingress-external")
    spec = service.inputs["spec"]
    assert service.inputs["metadata"]["namespace"] == "istio-ingress"
    assert [(p["port"], p["targetPort"]) for p in spec["ports"]] == [(443, 443)]
    assert spec["loadBalancerIP"] == "203.0.113.20" and spec["loadBalancerSourceRanges"] == ["192.0.2.0/24"]
    assert spec["selector"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert release.urn in service.dependencies


def test_east_west_load_balancers(canary: Run) -> None:
    external = canary.named("c1-eastwest-external").inputs
    internal = canary.named("c1-eastwest-internal").inputs
    assert external["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    assert external["spec"]["loadBalancerIP"] == "203.0.113.10"
    assert external["metadata"]["annotations"] == {"cloud.google.com/l4-rbs": "enabled"}
    assert internal["spec"]["loadBalancerSourceRanges"] == ["10.11.0.0/20", "10.68.0.0/14"]  # only the peers
    assert internal["metadata"]["annotations"]["networking.gke.io/load-balancer-type"] == "Internal"
    for service in (external, internal):
        assert [p["port"] for p in service["spec"]["ports"]] == [15443]
        assert service["metadata"]["labels"]["topology.istio.io/network"] == "c1"


def test_no_ingress_and_no_shared_vpc_means_neither_is_declared() -> None:
    plain = run_component(versions=(OLD,), ingress=None, internal_address=None, internal_sources=[])
    names = {r.name for r in plain.registered}
    assert {"c1-ingress", "c1-ingress-external", "c1-istio-ingress", "c1-eastwest-internal"}.isdisjoint(names)
    assert list(plain.component.namespaces) == ["istio-system"]
    assert [r.name for r in plain.of_type(RELEASE)] == ["c1-istio-base", "c1-istiod-1-31-1", "c1-eastwest"]


def test_the_serving_version_must_be_installed() -> None:
    with pytest.raises(ValueError, match="not among the installed versions"):
        run_component(versions=(NEW,), version=OLD)


# ----------------------------------------------------------------------------- pure values


def test_size_scales_replicas_and_requests() -> None:
    def istiod(size: str) -> dict[str, Any]:
        return istio_values.istiod_values(replace(plain_args(), size=size), OLD)

    assert [istiod(s)["autoscaleMin"] for s in ("small", "medium", "large")] == [2, 2, 3]
    assert istiod("large")["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    gateway = istio_values.east_west_values(replace(plain_args(), size="large"))
    assert gateway["autoscaling"]["minReplicas"] == 3 and gateway["podDisruptionBudget"]["maxUnavailable"] == 1


def test_zonal_clusters_spread_across_nodes() -> None:
    regional = istio_values.istiod_values(plain_args(), OLD)["topologySpreadConstraints"]
    zonal = istio_values.istiod_values(replace(plain_args(), zonal=True), OLD)["topologySpreadConstraints"]
    assert [(c["topologyKey"], c["whenUnsatisfiable"]) for c in regional] == [
        ("topology.kubernetes.io/zone", "DoNotSchedule"), ("kubernetes.io/hostname", "ScheduleAnyway")]
    assert [(c["topologyKey"], c["whenUnsatisfiable"]) for c in zonal] == [("kubernetes.io/hostname", "DoNotSchedule")]


def test_newest_compares_versions_numerically() -> None:
    assert istio_values.newest(("1.31.10", "1.31.9")) == "1.31.10"


def plain_args() -> ControlPlaneArgs:
    """Arguments for the pure value builders, which never touch the CA or addresses."""
    return ControlPlaneArgs(
        cluster="c1", network="c1", mesh_id="mesh", trust_domain="td.example", versions=(OLD, NEW), version=OLD,
        charts=ChartSource("oci://ghcr.io/istio/release/charts"), ca=None,  # type: ignore[arg-type]
        size="medium", zonal=False, external_address="203.0.113.10", east_west_sources=["198.51.100.0/24"],
        internal_address=None, internal_sources=[], ingress=None)


# ------------------------------------------------------------------------- rendered charts


def rendered_releases(run: Run) -> Iterator[Rendered]:
    for registered in run.of_type(RELEASE):
        yield render(preview.Registration(
            urn=registered.urn, type=registered.type, name=registered.name, parent="", provider="", protect=False,
            dependencies=registered.dependencies, ignore_changes=(), custom=True, inputs=registered.inputs), "c1")


@requires_charts
def test_two_istiod_revisions_render_without_colliding(canary: Run) -> None:
    by_name = {r.release.name: r for r in rendered_releases(canary)}
    old, new = by_name["c1-istiod-1-31-1"], by_name["c1-istiod-1-32-0"]

    def identities(release: Rendered) -> set[tuple[str, str, str]]:
        return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in release.objects}

    assert not identities(old) & identities(new), "Helm would refuse the second release (object owned twice)"
    for release in by_name.values():
        if release.release.name not in ("c1-istiod-1-31-1", "c1-istiod-1-32-0"):
            assert not identities(release) & (identities(old) | identities(new)), release.release.name
    for release, revision in ((old, "1-31-1"), (new, "1-32-0")):
        webhook = release.one("MutatingWebhookConfiguration", f"istio-sidecar-injector-{revision}")
        selectors = [w["namespaceSelector"]["matchExpressions"][0] for w in webhook["webhooks"]
                     if w["namespaceSelector"]["matchExpressions"][0]["operator"] == "In"]
        assert selectors == [{"key": "istio.io/rev", "operator": "In", "values": [revision]}]
        release.one("ConfigMap", f"istio-sidecar-injector-{revision}")
        release.one("ConfigMap", f"istio-{revision}")
        release.one("Service", f"istiod-{revision}")


@requires_charts
def test_ingress_gateway_renders_with_its_account_and_selector(canary: Run) -> None:
    by_name = {r.release.name: r for r in rendered_releases(canary)}
    ingress = by_name["c1-ingress"]
    deployment = ingress.one("Deployment", "istio-ingressgateway")
    assert deployment["metadata"]["namespace"] == "istio-ingress"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "ingress-sa"
    ingress.one("ServiceAccount", "ingress-sa")
    assert not ingress.all("Service")
    selector = canary.named("c1-ingress-external").inputs["spec"]["selector"]
    assert selector.items() <= pod_labels(deployment).items()
    assert pod_labels(deployment)["istio.io/rev"] == "1-31-1"
    assert ingress.one("HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
    ingress.one("PodDisruptionBudget", "istio-ingressgateway")
