"""What the Istio releases would install: Istio's real 1.31 charts, rendered with the exact values the
program declares.

The mock engine only shows a `helm.sh/v3:Release` and its values; here each release of the prod stack
is rendered offline with Helm's own engine (`helm-python-sdk`) — same chart, values, release name and
namespace — and the resulting objects are asserted on: gateway Services, replicas, disruption
budgets, scheduling, istiod's environment and mesh config, the sidecar injector's settings. The
charts come from `FLEET_MESH_ISTIO_CHARTS` (set by `.ci/run`); user clones without them skip.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh import preview
from mesh.infra.istio_values import METADATA_SERVER_RANGES, SPOT_LABEL, revision_label
from mesh.manifest import load

import stack_fixture

try:
    import helm_python
except ImportError:  # not installable off Linux x86-64
    helm_python = None

ROOT = stack_fixture.project()
CHARTS_ENV = "FLEET_MESH_ISTIO_CHARTS"
CHARTS = os.environ.get(CHARTS_ENV)
RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE = "kubernetes:core/v1:Service"
# base renders ~1 MB of CRDs per cluster: libyaml's loader where present.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Values only the cloud knows (NAT addresses) arrive as "<computed>": a documentation IP stands in.
DOC_IP = "203.0.113.99"

requires_charts = pytest.mark.skipif(
    CHARTS is None or helm_python is None,
    reason=f"Istio's Helm charts are not rendered: set {CHARTS_ENV} to the charts folder and install "
           "helm-python-sdk (Linux x86-64) to check what the releases would install")
pytestmark = requires_charts


def concrete(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(preview.COMPUTED, DOC_IP)
    if isinstance(value, dict):
        return {k: concrete(v) for k, v in value.items()}
    if isinstance(value, list):
        return [concrete(v) for v in value]
    return value


@functools.cache
def _chart(folder: str) -> Any:
    return helm_python.Chart.load(folder)


@dataclass(frozen=True)
class Rendered:
    """One release's objects, as Helm would apply them."""

    release: preview.Registration
    cluster: str
    objects: tuple[dict[str, Any], ...]

    @property
    def chart(self) -> str:
        return chart_name(self.release)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, (self.release.name, kind, name, [o["metadata"]["name"] for o in found])
        return found[0]

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.release.inputs.get("values", {}))


def chart_name(release: preview.Registration) -> str:
    return str(release.inputs["chart"]).rstrip("/").rsplit("/", 1)[-1]  # a name, or oci://…/<name>


def render(release: preview.Registration, cluster: str) -> Rendered:
    """Render a Release registration with exactly its chart, values, name and namespace."""
    inputs = release.inputs
    assert CHARTS is not None
    folder = Path(CHARTS) / chart_name(release)
    assert folder.is_dir(), f"{release.name}: chart {inputs['chart']!r} is not one of Istio's charts"
    manifests = _chart(str(folder)).render(concrete(inputs.get("values", {})), name=inputs["name"],
                                           namespace=inputs["namespace"])
    objects = tuple(doc for path, text in sorted(manifests.items()) if not path.endswith(".txt")
                    for doc in yaml.load_all(text, Loader=LOADER) if doc)
    return Rendered(release, cluster, objects)


@pytest.fixture(scope="module")
def prod() -> preview.PreviewResult:
    return preview.run(ROOT, "prod")


@pytest.fixture(scope="module")
def rendered(prod: preview.PreviewResult) -> dict[str, Rendered]:
    owners = prod.cluster_of()
    return {r.name: render(r, owners[r.urn]) for r in prod.registrations if r.type == RELEASE}


def clusters() -> list[str]:
    return sorted(load(ROOT / "stacks/prod").world.clusters)


def releases_of(rendered: dict[str, Rendered], cluster: str, chart: str) -> list[Rendered]:
    return [r for _, r in sorted(rendered.items()) if r.cluster == cluster and r.chart == chart]


def gateways(rendered: dict[str, Rendered]) -> Iterator[tuple[str, Rendered]]:
    for cluster in clusters():
        for release in releases_of(rendered, cluster, "gateway"):
            yield cluster, release


def istiods(rendered: dict[str, Rendered]) -> Iterator[tuple[str, Rendered]]:
    for cluster in clusters():
        for release in releases_of(rendered, cluster, "istiod"):
            yield cluster, release


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = pod_spec(deployment)["containers"][0]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def zonal(cluster: str) -> bool:
    return len(load(ROOT / "stacks/prod").world.clusters[cluster].zones) == 1


# ------------------------------------------------------------------------------------------ tests


def test_every_release_maps_to_a_chart_and_every_cluster_has_a_full_control_plane(
        rendered: dict[str, Rendered]) -> None:
    assert rendered, "no helm.sh/v3:Release registered: the mock run registered nothing"
    for cluster in clusters():
        assert len(releases_of(rendered, cluster, "base")) == 1, cluster
        assert releases_of(rendered, cluster, "istiod"), cluster
        names = {r.release.inputs["name"] for r in releases_of(rendered, cluster, "gateway")}
        assert "istio-eastwestgateway" in names, cluster
    for release in rendered.values():
        assert release.objects, release.release.name


def test_crds_come_only_from_base(rendered: dict[str, Rendered]) -> None:
    for name, release in rendered.items():
        assert bool(release.all("CustomResourceDefinition")) == (release.chart == "base"), name


def test_istiod_env_and_mesh_config_match_what_the_compiler_relies_on(rendered: dict[str, Rendered]) -> None:
    for cluster, release in istiods(rendered):
        revision = release.values["revision"]
        env = env_of(release.one("Deployment", f"istiod-{revision}"))
        assert env["PILOT_ENABLE_IP_AUTOALLOCATE"] == "true", cluster  # SE VIPs: the compiler writes none
        assert env["PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES"] == "false", cluster
        assert env["CLUSTER_ID"] == cluster and env["REVISION"] == revision
        mesh = yaml.safe_load(release.one("ConfigMap", f"istio-{revision}")["data"]["mesh"])
        assert mesh["trustDomain"] == "acme.example"
        assert mesh["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"] == "true", cluster
        assert mesh["defaultConfig"]["meshId"] == "acme-prod"
        assert mesh["defaultConfig"]["discoveryAddress"] == f"istiod-{revision}.istio-system.svc:15012"
        assert not yaml.safe_load(release.one("ConfigMap", f"istio-{revision}")["data"]["meshNetworks"])["networks"]


def test_sidecars_never_capture_the_gke_metadata_server(rendered: dict[str, Rendered]) -> None:
    # Workload Identity tokens come from the metadata server; captured, they would meet REGISTRY_ONLY.
    for cluster, release in istiods(rendered):
        revision = release.values["revision"]
        injector = release.one("ConfigMap", f"istio-sidecar-injector-{revision}")
        proxy = json.loads(injector["data"]["values"])["global"]["proxy"]
        assert proxy["excludeIPRanges"].split(",") == list(METADATA_SERVER_RANGES), cluster
        assert proxy["includeIPRanges"] == "*", cluster  # everything else is still captured
        assert proxy["excludeOutboundPorts"] == "" and proxy["excludeInboundPorts"] == ""
        # the sidecar template turns the value into the iptables exclusion
        assert "traffic.sidecar.istio.io/excludeOutboundIPRanges" in injector["data"]["config"]


def test_istiod_is_highly_available_and_off_spot_nodes(rendered: dict[str, Rendered]) -> None:
    for cluster, release in istiods(rendered):
        revision = release.values["revision"]
        name = f"istiod-{revision}"
        deployment = release.one("Deployment", name)
        assert "replicas" not in deployment["spec"], cluster  # the HPA owns the count
        hpa = release.one("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["minReplicas"] >= 2, cluster
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        pdb = release.one("PodDisruptionBudget", name)
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
        requests = pod_spec(deployment)["containers"][0]["resources"]["requests"]
        assert requests["cpu"] and requests["memory"], cluster
        assert_placed_like_the_control_plane(cluster, deployment)


def test_every_gateway_is_highly_available_and_off_spot_nodes(rendered: dict[str, Rendered]) -> None:
    for cluster, release in gateways(rendered):
        name = release.release.inputs["name"]
        deployment = release.one("Deployment", name)
        assert "replicas" not in deployment["spec"], cluster
        hpa = release.one("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["minReplicas"] >= 2, (cluster, name)
        pdb = release.one("PodDisruptionBudget", name)
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
        requests = pod_spec(deployment)["containers"][0]["resources"]["requests"]
        assert requests["cpu"] and requests["memory"], (cluster, name)
        assert_placed_like_the_control_plane(cluster, deployment)


def assert_placed_like_the_control_plane(cluster: str, deployment: dict[str, Any]) -> None:
    spec = pod_spec(deployment)
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert all({"key": SPOT_LABEL, "operator": "NotIn", "values": ["true"]} in t["matchExpressions"] for t in terms)
    assert not any(t.get("key") == SPOT_LABEL for t in spec.get("tolerations", [])), cluster
    hard = [c for c in spec["topologySpreadConstraints"] if c["whenUnsatisfiable"] == "DoNotSchedule"]
    assert [c["topologyKey"] for c in hard] == (
        ["kubernetes.io/hostname"] if zonal(cluster) else ["topology.kubernetes.io/zone"]), cluster
    for constraint in spec["topologySpreadConstraints"]:
        assert constraint["maxSkew"] == 1
        # the spread counts exactly this workload's pods
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels(deployment).items()


def test_gateways_are_injected_by_the_serving_revision(rendered: dict[str, Rendered]) -> None:
    for cluster, release in gateways(rendered):
        labels = pod_labels(release.one("Deployment", release.release.inputs["name"]))
        assert labels["istio.io/rev"] == revision_label(release.release.inputs["version"]), cluster
        assert labels["sidecar.istio.io/inject"] == "true"
        istiod_revisions = {r.values["revision"] for c, r in istiods(rendered) if c == cluster}
        assert labels["istio.io/rev"] in istiod_revisions, cluster


def test_east_west_pods_still_carry_their_network(rendered: dict[str, Rendered]) -> None:
    for cluster, release in gateways(rendered):
        if release.release.inputs["name"] != "istio-eastwestgateway":
            continue
        deployment = release.one("Deployment", "istio-eastwestgateway")
        assert pod_labels(deployment)["topology.istio.io/network"] == cluster
        assert env_of(deployment)["ISTIO_META_REQUESTED_NETWORK_VIEW"] == cluster
        assert not release.all("Role"), "the east-west gateway must not read Secrets in istio-system (cacerts)"


def test_gateway_load_balancers_expose_only_what_callers_need(
        prod: preview.PreviewResult, rendered: dict[str, Rendered]) -> None:
    services = [r for r in prod.registrations if r.type == SERVICE]
    owners = prod.cluster_of()
    for cluster, release in gateways(rendered):
        name = release.release.inputs["name"]
        namespace = release.release.inputs["namespace"]
        if name == "istio-egressgateway":
            # Reached from sidecars only: the chart's own Service, in-cluster, on the compiled ports.
            [service] = release.all("Service")
            assert service["spec"]["type"] == "ClusterIP"
            assert sorted(p["port"] for p in service["spec"]["ports"]) == [80, 443, 15021]
            assert not [s for s in services
                        if owners[s.urn] == cluster and s.inputs["metadata"]["namespace"] == namespace]
            continue
        assert not release.all("Service"), f"{release.release.name}: the chart's Service would expose every port"
        deployment = release.one("Deployment", name)
        mine = [s for s in services if owners[s.urn] == cluster and s.inputs["metadata"]["namespace"] == namespace
                and s.inputs["spec"]["selector"].items() <= pod_labels(deployment).items()]
        assert mine, f"{cluster}: no load balancer selects {name}'s pods"
        for service in mine:
            spec, metadata = concrete(service.inputs["spec"]), service.inputs["metadata"]
            annotations = metadata.get("annotations", {})
            ports = [(p["port"], p["targetPort"], p["protocol"]) for p in spec["ports"]]
            assert ports == ([(443, 443, "TCP")] if name == "istio-ingressgateway" else [(15443, 15443, "TCP")])
            assert spec["type"] == "LoadBalancer" and spec["loadBalancerIP"]
            ranges = spec["loadBalancerSourceRanges"]
            assert ranges and "0.0.0.0/0" not in ranges, (service.name, ranges)
            if annotations.get("networking.gke.io/load-balancer-type") == "Internal":
                assert annotations["networking.gke.io/internal-load-balancer-allow-global-access"] == "true"
            else:
                assert annotations["cloud.google.com/l4-rbs"] == "enabled", service.name
            if name == "istio-eastwestgateway":
                assert metadata["labels"]["topology.istio.io/network"] == cluster


def test_revisioned_webhooks_select_only_their_revision(rendered: dict[str, Rendered]) -> None:
    for cluster, release in istiods(rendered):
        revision = release.values["revision"]
        injector = release.one("MutatingWebhookConfiguration", f"istio-sidecar-injector-{revision}")
        for webhook in injector["webhooks"]:
            assert webhook["clientConfig"]["service"]["name"] == f"istiod-{revision}"
            expressions = webhook["namespaceSelector"]["matchExpressions"] + \
                webhook.get("objectSelector", {}).get("matchExpressions", [])
            # no default-revision (`istio-injection=enabled`) or revision-tag webhooks
            assert {"key": "istio.io/rev", "operator": "In", "values": [revision]} in expressions, cluster
        assert not [m for m in release.all("MutatingWebhookConfiguration") if m is not injector]
        validator = release.one("ValidatingWebhookConfiguration", f"istio-validator-{revision}-istio-system")
        assert validator["webhooks"][0]["clientConfig"]["service"]["name"] == f"istiod-{revision}"
    for cluster in clusters():
        (base,) = releases_of(rendered, cluster, "base")
        serving = {r.release.inputs["name"]: r for c, r in gateways(rendered) if c == cluster}["istio-eastwestgateway"]
        default = base.one("ValidatingWebhookConfiguration", "istiod-default-validator")
        assert default["metadata"]["labels"]["istio.io/rev"] == serving.values["revision"]
        assert default["webhooks"][0]["clientConfig"]["service"]["name"] == f"istiod-{serving.values['revision']}"


def test_no_reader_rbac_anywhere(rendered: dict[str, Rendered]) -> None:
    for name, release in rendered.items():
        for obj in release.objects:
            assert "istio-reader" not in obj["metadata"]["name"], (name, obj["kind"], obj["metadata"]["name"])


def test_every_compiled_gateway_selects_installed_pods_behind_a_load_balancer_port(
        prod: preview.PreviewResult, rendered: dict[str, Rendered]) -> None:
    owners = prod.cluster_of()
    services = [r for r in prod.registrations if r.type == SERVICE]
    compiled = [r for r in prod.registrations if r.type == "kubernetes:networking.istio.io/v1:Gateway"]
    assert compiled
    for gateway in compiled:
        cluster = owners[gateway.urn]
        selector = gateway.inputs["spec"]["selector"]
        pods = [pod_labels(r.one("Deployment", r.release.inputs["name"]))
                for c, r in gateways(rendered) if c == cluster]
        (labels,) = [p for p in pods if selector.items() <= p.items()]
        exposed = {p["targetPort"] for s in services if owners[s.urn] == cluster
                   and s.inputs["spec"]["selector"].items() <= labels.items() for p in s.inputs["spec"]["ports"]}
        # The egress gateway is reached in-cluster through its chart's own ClusterIP Service.
        exposed |= {p["targetPort"] for c, r in gateways(rendered) if c == cluster for s in r.all("Service")
                    if s["spec"]["selector"].items() <= labels.items() for p in s["spec"]["ports"]}
        for server in gateway.inputs["spec"]["servers"]:
            assert server["port"]["number"] in exposed, (gateway.name, server["port"], exposed)
