"""The policy pack (mesh/policy, policy/): every rule trips on a deliberately broken program, prod passes.

Each rule is shown failing on a small hand-built fleet that is otherwise valid (so the tests mean
something whatever state the program is in), and on the real prod registrations where prod has the
resources involved. The pack runs exactly as `mesh preview` runs it: registrations → `pulumi_policy`
argument objects (props behind the engine's unknown-checking proxies) → each policy's `validate`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy

from mesh import cli, policy, preview
from mesh.infra.apis import api_of
from mesh.policy import rules
from mesh.policy.view import COMPUTED, plain
from mesh.preview import Registration

import stack_fixture

ROOT = Path(__file__).resolve().parent.parent
STACK = "urn:pulumi:test::fleet-mesh::"
HOST, SERVICE, NUMBER = "acme-net-core", "acme-core-prod", "123456789012"
SUBNET_PATH = f"projects/{HOST}/regions/us-east1/subnetworks/core-use1-a"

Fleet = list[Registration]


# ------------------------------------------------------------------------------ a valid baseline


def urn(type_: str, name: str) -> str:
    return f"{STACK}{type_}::{name}"


def reg(type_: str, name: str, inputs: dict[str, Any], *, deps: Iterable[str] = (), protect: bool = False,
        provider: str = "", custom: bool = True) -> Registration:
    return Registration(urn=urn(type_, name), type=type_, name=name, parent="", provider=provider, protect=protect,
                        dependencies=tuple(sorted(deps)), ignore_changes=(), custom=custom, inputs=inputs)


def valid_fleet() -> Fleet:
    """One Shared VPC cluster with everything GCP needs for it, hand-built; passes every rule."""
    gke_agent, apis_agent = rules.gke_agent(NUMBER), rules.apis_agent(NUMBER)
    host = reg(rules.HOST_PROJECT, "host", {"project": HOST})
    role = reg(rules.CUSTOM_ROLE, "gke-firewalls", {"project": HOST, "roleId": "fleetMeshGkeFirewalls",
                                                    "permissions": sorted(rules.FIREWALL_PERMISSIONS)})
    attachment = reg(rules.SERVICE_PROJECT, "attachment", {"hostProject": HOST, "serviceProject": SERVICE},
                     deps=[host.urn])
    host_agent = reg(rules.PROJECT_IAM, "host-agent", {"project": HOST, "role": rules.HOST_AGENT_USER,
                                                       "member": gke_agent})
    firewalls = reg(rules.PROJECT_IAM, "firewalls", {
        "project": HOST, "role": f"projects/{HOST}/roles/fleetMeshGkeFirewalls", "member": gke_agent}, deps=[role.urn])
    network = reg("gcp:compute/network:Network", "core", {"project": HOST, "name": "core"})
    subnet = reg(rules.SUBNETWORK, "core-use1-a-subnet", {
        "project": HOST, "region": "us-east1", "name": "core-use1-a", "ipCidrRange": "10.10.0.0/20",
        "secondaryIpRanges": [{"rangeName": "core-use1-a-pods", "ipCidrRange": "10.64.0.0/14"},
                              {"rangeName": "core-use1-a-services", "ipCidrRange": "10.200.0.0/20"}]},
        deps=[network.urn])
    subnet_grants = [reg(rules.SUBNET_IAM, f"subnet-{kind}", {
        "project": HOST, "region": "us-east1", "subnetwork": "core-use1-a", "role": rules.NETWORK_USER,
        "member": member}) for kind, member in (("gke", gke_agent), ("cloudservices", apis_agent))]
    cluster = reg(rules.CLUSTER, "core-use1-a", {
        "name": "core-use1-a", "project": SERVICE, "location": "us-east1",
        "network": f"projects/{HOST}/global/networks/core", "subnetwork": SUBNET_PATH,
        "networkingMode": "VPC_NATIVE", "datapathProvider": "ADVANCED_DATAPATH",
        "ipAllocationPolicy": {"clusterSecondaryRangeName": "core-use1-a-pods",
                               "servicesSecondaryRangeName": "core-use1-a-services"},
        "privateClusterConfig": {"enablePrivateNodes": True, "masterIpv4CidrBlock": "172.16.0.0/28"},
        "controlPlaneEndpointsConfig": {"dnsEndpointConfig": {"allowExternalTraffic": True}},
        "workloadIdentityConfig": {"workloadPool": f"{SERVICE}.svc.id.goog"},
        "releaseChannel": {"channel": "REGULAR"},
        "binaryAuthorization": {"evaluationMode": "PROJECT_SINGLETON_POLICY_ENFORCE"},
        "securityPostureConfig": {"mode": "BASIC", "vulnerabilityMode": "VULNERABILITY_DISABLED"},
        "enableLegacyAbac": False, "deletionProtection": True,
    }, protect=True, deps=[attachment.urn, host_agent.urn, firewalls.urn, *(g.urn for g in subnet_grants),
                           network.urn, subnet.urn])
    binauthz = reg(rules.BINAUTHZ_POLICY, "binauthz", {"project": SERVICE, "globalPolicyEvaluationMode": "ENABLE"})
    pool_config = {"machineType": "e2-standard-4", "imageType": "COS_CONTAINERD",
                   "workloadMetadataConfig": {"mode": "GKE_METADATA"}}
    pools = [
        reg(rules.NODE_POOL, "core-use1-a-default", {
            "name": "default", "project": SERVICE, "location": "us-east1", "cluster": "core-use1-a",
            "autoscaling": {"minNodeCount": 1, "maxNodeCount": 3},
            "management": {"autoRepair": True, "autoUpgrade": True}, "nodeConfig": pool_config}, deps=[cluster.urn]),
        reg(rules.NODE_POOL, "core-use1-a-spot", {
            "name": "spot", "project": SERVICE, "location": "us-east1", "cluster": "core-use1-a",
            "autoscaling": {"minNodeCount": 0, "maxNodeCount": 5},
            "management": {"autoRepair": True, "autoUpgrade": True},
            "nodeConfig": {**pool_config, "spot": True, "taints": [
                {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NO_SCHEDULE"}]}}, deps=[cluster.urn]),
    ]
    account = reg(rules.ACCOUNT, "core-use1-a-nodes", {"project": SERVICE, "accountId": "gke-nodes-core-use1-a"})
    router = reg("gcp:compute/router:Router", "core-us-east1-router", {"project": HOST, "region": "us-east1"})
    nat = reg(rules.ROUTER_NAT, "core-us-east1-nat", {
        "project": HOST, "region": "us-east1", "router": "core-us-east1-router", "enableDynamicPortAllocation": True,
        "minPortsPerVm": 64, "maxPortsPerVm": 4096}, deps=[router.urn])
    firewall = reg(rules.FIREWALL, "core-use1-a-eastwest-internal", {
        "project": HOST, "network": "core", "direction": "INGRESS", "allows": [{"protocol": "tcp", "ports": ["15443"]}],
        "sourceRanges": ["10.11.0.0/20"], "targetTags": ["fleet-mesh-core-use1-a"]})
    provider = reg(rules.K8S_PROVIDER, "core-use1-a-k8s", {"clusterIdentifier": "x"})
    on_cluster = f"{provider.urn}"
    internal_lb = reg(rules.K8S_SERVICE, "core-use1-a-internal-lb", {
        "metadata": {"name": "istio-eastwestgateway-internal", "namespace": "istio-system",
                     "annotations": {"networking.gke.io/load-balancer-type": "Internal"}},
        "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.11.0.0/20"]}}, provider=on_cluster)
    gateway = reg(rules.HELM_RELEASE, "core-use1-a-eastwest", {
        "chart": "gateway", "version": "1.31.1", "values": {"service": {
            "type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24"]}}}, provider=on_cluster)
    key = reg(rules.PRIVATE_KEY, "mesh-pki-root-key", {"algorithm": "ECDSA"}, protect=True)
    fleet = [host, role, attachment, host_agent, firewalls, network, subnet, *subnet_grants, cluster, binauthz,
             *pools, account, router, nat, firewall, provider, internal_lb, gateway, key]
    return with_apis(fleet, extra={(SERVICE, rules.BINAUTHZ_API): [cluster.name]})


def with_apis(fleet: Fleet, extra: dict[tuple[str, str], list[str]]) -> Fleet:
    """Enable every API the fleet's resources need and make each depend on its own."""
    needed: dict[tuple[str, str], list[str]] = {key: list(names) for key, names in extra.items()}
    for r in fleet:
        api = api_of(r.type)
        project = r.inputs.get("serviceProject" if r.type == rules.SERVICE_PROJECT else "project")
        if api and project:
            needed.setdefault((project, api), []).append(r.name)
    services = {key: reg(rules.API_SERVICE, f"{key[0]}-{key[1].split('.')[0]}", {
        "project": key[0], "service": key[1], "disableOnDestroy": False}) for key in sorted(needed)}
    users: dict[str, list[str]] = {}
    for key, names in needed.items():
        for name in names:
            users.setdefault(name, []).append(services[key].urn)
    return [*services.values(), *(dataclasses.replace(r, dependencies=tuple(sorted({*r.dependencies,
                                                                                     *users.get(r.name, [])})))
                                  for r in fleet)]


# ------------------------------------------------------------------------------ editing helpers


def named(fleet: Fleet, name: str) -> Registration:
    return next(r for r in fleet if r.name == name)


def edit(fleet: Fleet, name: str, **changes: Any) -> Fleet:
    return [dataclasses.replace(r, **changes) if r.name == name else r for r in fleet]


def set_input(fleet: Fleet, name: str, path: str, value: Any) -> Fleet:
    """A copy with inputs[path] (dotted) set; `value=DELETE` removes the key."""
    target = named(fleet, name)
    inputs = json.loads(json.dumps(target.inputs))
    node = inputs
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return edit(fleet, name, inputs=inputs)


DELETE = object()


def drop(fleet: Fleet, name: str) -> Fleet:
    return [r for r in fleet if r.name != name]


def without_dependency(fleet: Fleet, name: str, on: str) -> Fleet:
    gone = named(fleet, on).urn
    return edit(fleet, name, dependencies=tuple(d for d in named(fleet, name).dependencies if d != gone))


def add(fleet: Fleet, *more: Registration) -> Fleet:
    return [*fleet, *more]


def tripped(fleet: Fleet) -> dict[str, list[policy.Violation]]:
    out: dict[str, list[policy.Violation]] = {}
    for violation in policy.check(fleet):
        out.setdefault(violation.policy, []).append(violation)
    return out


# ------------------------------------------------------------------------------ every rule trips

Break = Callable[[Fleet], Fleet]
CASES: list[tuple[str, str, Break, str]] = [
    # (rule, what is broken, how, a phrase the message must contain)
    ("shared-vpc-service-project", "no attachment", lambda f: drop(f, "attachment"),
     f"{SERVICE} is not attached to {HOST}: add gcp.compute.SharedVPCServiceProject"),
    ("shared-vpc-service-project", "host not enabled", lambda f: drop(f, "host"),
     f"{HOST} is not a Shared VPC host: add gcp.compute.SharedVPCHostProject(project='{HOST}')"),
    ("shared-vpc-service-project", "cluster does not wait for the attachment",
     lambda f: without_dependency(f, "core-use1-a", "attachment"), "does not depend on SharedVPCServiceProject"),
    ("shared-vpc-service-project", "no subnet grant for the GKE agent", lambda f: drop(f, "subnet-gke"),
     "GKE service agent lacks roles/compute.networkUser on the subnetwork"),
    ("shared-vpc-service-project", "no subnet grant for the Google APIs agent",
     lambda f: drop(f, "subnet-cloudservices"),
     f"roles/compute.networkUser on the subnetwork for the Google APIs service agent: add "
     f"gcp.compute.SubnetworkIAMMember(project='{HOST}', region='us-east1', subnetwork='core-use1-a'"),
    ("shared-vpc-service-project", "no host service agent user", lambda f: drop(f, "host-agent"),
     f"lacks roles/container.hostServiceAgentUser on {HOST}"),
    ("shared-vpc-service-project", "no firewall grant", lambda f: drop(f, "firewalls"),
     f"lacks firewall management on {HOST}"),
    ("shared-vpc-service-project", "custom role without updatePolicy",
     lambda f: set_input(f, "gke-firewalls", "permissions", ["compute.firewalls.create"]),
     f"lacks firewall management on {HOST}"),
    ("shared-vpc-service-project", "cluster does not wait for a grant",
     lambda f: without_dependency(f, "core-use1-a", "host-agent"), "does not depend on IAMMember 'host-agent'"),
    ("shared-vpc-service-project", "project number unknown to the program",
     lambda f: set_input(f, "subnet-gke", "member",
                         "serviceAccount:service-None@container-engine-robot.iam.gserviceaccount.com"),
     "the number must be acme-core-prod's project number"),
    ("shared-vpc-service-project", "two numbers for one project",
     lambda f: set_input(f, "host-agent", "member", rules.gke_agent("999")),
     f"lacks roles/container.hostServiceAgentUser on {HOST} for the GKE service agent"),
    ("shared-vpc-service-project", "subnetwork unknown at preview",
     lambda f: set_input(f, "core-use1-a", "subnetwork", COMPUTED), "not a known path"),
    ("one-host-per-service-project", "one service project, two hosts",
     lambda f: add(f, reg(rules.SERVICE_PROJECT, "attachment-2", {"hostProject": "acme-net-data",
                                                                  "serviceProject": SERVICE})),
     f"service project {SERVICE} on host acme-net-data, but {SERVICE} is also on {HOST}"),
    ("private-nodes", "public nodes", lambda f: set_input(f, "core-use1-a", "privateClusterConfig.enablePrivateNodes",
                                                          False), "enable_private_nodes=True"),
    ("private-nodes", "control plane not a /28",
     lambda f: set_input(f, "core-use1-a", "privateClusterConfig.masterIpv4CidrBlock", "172.16.0.0/27"),
     "GKE needs an IPv4 /28"),
    ("no-withdrawn-gke-fields", "VULNERABILITY_BASIC",
     lambda f: set_input(f, "core-use1-a", "securityPostureConfig.vulnerabilityMode", "VULNERABILITY_BASIC"),
     "basic vulnerability scanning was withdrawn in 2025"),
    ("no-withdrawn-gke-fields", "PodSecurityPolicy",
     lambda f: set_input(f, "core-use1-a", "podSecurityPolicyConfig", {"enabled": True}), "removed in GKE 1.25"),
    ("no-withdrawn-gke-fields", "Istio add-on",
     lambda f: set_input(f, "core-use1-a", "addonsConfig.istioConfig", {"disabled": False}), "Istio on GKE add-on"),
    ("no-withdrawn-gke-fields", "legacy ABAC", lambda f: set_input(f, "core-use1-a", "enableLegacyAbac", True),
     "enable_legacy_abac=False"),
    ("no-withdrawn-gke-fields", "alpha cluster", lambda f: set_input(f, "core-use1-a", "enableKubernetesAlpha", True),
     "deleted after 30 days"),
    ("no-withdrawn-gke-fields", "Docker node image",
     lambda f: set_input(f, "core-use1-a-default", "nodeConfig.imageType", "COS"), "use COS_CONTAINERD"),
    ("apis-enabled", "API never enabled", lambda f: drop(f, "acme-net-core-compute"),
     "needs compute.googleapis.com in acme-net-core, and nothing enables it: add "
     "gcp.projects.Service('acme-net-core-compute'"),
    ("apis-enabled", "resource does not wait for its API",
     lambda f: without_dependency(f, "core-use1-a", "acme-core-prod-container"),
     "Cluster 'core-use1-a' does not depend on Service 'acme-core-prod-container'"),
    ("apis-enabled", "API disabled on destroy",
     lambda f: set_input(f, "acme-net-core-compute", "disableOnDestroy", True), "set disable_on_destroy=False"),
    ("apis-enabled", "no project named", lambda f: set_input(f, "core-use1-a-eastwest-internal", "project", DELETE),
     "names no project"),
    ("firewall-not-open-to-world", "0.0.0.0/0",
     lambda f: set_input(f, "core-use1-a-eastwest-internal", "sourceRanges", ["10.11.0.0/20", "0.0.0.0/0"]),
     "allows source range 0.0.0.0/0"),
    ("firewall-not-open-to-world", "::/0",
     lambda f: set_input(f, "core-use1-a-eastwest-internal", "sourceRanges", ["::/0"]), "source range ::/0"),
    ("firewall-not-open-to-world", "no source at all",
     lambda f: set_input(f, "core-use1-a-eastwest-internal", "sourceRanges", DELETE), "GCP applies it to 0.0.0.0/0"),
    ("load-balancer-source-ranges", "LB Service without ranges",
     lambda f: set_input(f, "core-use1-a-internal-lb", "spec.loadBalancerSourceRanges", DELETE),
     "open to every address that routes to the VPC"),
    ("load-balancer-source-ranges", "gateway chart with an empty list",
     lambda f: set_input(f, "core-use1-a-eastwest", "values.service.loadBalancerSourceRanges", []),
     "the chart drops an empty list"),
    ("load-balancer-source-ranges", "gateway chart open to 0.0.0.0/0",
     lambda f: set_input(f, "core-use1-a-eastwest", "values.service.loadBalancerSourceRanges", ["0.0.0.0/0"]),
     "source range 0.0.0.0/0"),
    ("kubernetes-explicit-provider", "default provider", lambda f: edit(f, "core-use1-a-eastwest", provider=""),
     "uses the default Kubernetes provider"),
    ("kubernetes-explicit-provider", "named default provider",
     lambda f: edit(f, "core-use1-a-eastwest", provider=f"{STACK}pulumi:providers:kubernetes::default_4_34_2"),
     "not an explicit pulumi:providers:kubernetes"),
    ("gke-cluster-protected", "cluster unprotected", lambda f: edit(f, "core-use1-a", protect=False),
     "protect=True"),
    ("gke-cluster-protected", "no deletion protection",
     lambda f: set_input(f, "core-use1-a", "deletionProtection", False), "deletion_protection=True"),
    ("ca-keys-protected", "root key unprotected", lambda f: edit(f, "mesh-pki-root-key", protect=False),
     "PrivateKey 'mesh-pki-root-key' is not protected"),
    ("workload-pool-of-own-project", "another project's pool",
     lambda f: set_input(f, "core-use1-a", "workloadIdentityConfig.workloadPool", "acme-other.svc.id.goog"),
     "set 'acme-core-prod.svc.id.goog'"),
    ("workload-identity-metadata", "pool exposes node metadata",
     lambda f: set_input(f, "core-use1-a-default", "nodeConfig.workloadMetadataConfig.mode", "GCE_METADATA"),
     "workloadMetadataConfig.mode is 'GCE_METADATA'"),
    ("release-channel-auto-upgrade", "auto-upgrade off on a channel",
     lambda f: set_input(f, "core-use1-a-default", "management.autoUpgrade", False), "set auto_upgrade=True"),
    ("spot-pool-tainted", "Spot pool without taint",
     lambda f: set_input(f, "core-use1-a-spot", "nodeConfig.taints", DELETE), "without a NoSchedule taint"),
    ("binary-authorization-policy", "no Binary Authorization policy", lambda f: drop(f, "binauthz"),
     "declares none: add gcp.binaryauthorization.Policy(project='acme-core-prod'"),
    ("binary-authorization-policy", "Binary Authorization API off",
     lambda f: drop(f, "acme-core-prod-binaryauthorization"), "needs binaryauthorization.googleapis.com"),
    ("nat-dynamic-ports", "static port allocation",
     lambda f: set_input(f, "core-us-east1-nat", "enableDynamicPortAllocation", DELETE),
     "dynamic port allocation is off"),
    ("nat-dynamic-ports", "minimum not a power of two",
     lambda f: set_input(f, "core-us-east1-nat", "minPortsPerVm", 100), "minPortsPerVm = 100: must be a power of two"),
    ("nat-dynamic-ports", "minimum above maximum",
     lambda f: set_input(f, "core-us-east1-nat", "minPortsPerVm", 8192), "must be below maxPortsPerVm 4096"),
    ("dns-endpoint", "DNS endpoint off", lambda f: set_input(f, "core-use1-a", "controlPlaneEndpointsConfig", DELETE),
     "the DNS endpoint is off"),
    ("dataplane-v2-without-calico", "Calico on Dataplane V2",
     lambda f: set_input(f, "core-use1-a", "networkPolicy", {"enabled": True}), "Calico network policy is enabled"),
    ("secondary-ranges-exist", "pod range not on the subnet",
     lambda f: set_input(f, "core-use1-a", "ipAllocationPolicy.clusterSecondaryRangeName", "pods"),
     "'pods' is not a secondary range of Subnetwork 'core-use1-a-subnet'"),
    ("service-account-id", "truncated id ends in a hyphen",
     lambda f: set_input(f, "core-use1-a-nodes", "accountId", "gke-nodes-a-very-long-cluster-"),
     "not end with a hyphen"),
    ("gke-cluster-name", "name too long", lambda f: set_input(f, "core-use1-a", "name", "c" * 41),
     "not a valid GKE cluster name"),
    ("node-pool-autoscaling-bounds", "min above max",
     lambda f: set_input(f, "core-use1-a-default", "autoscaling.minNodeCount", 5), "minNodeCount 5 exceeds"),
]


# Breaking one thing sometimes breaks a second rule too, by design.
ALSO: dict[str, set[str]] = {
    "one service project, two hosts": {"apis-enabled"},  # the second host has no APIs enabled either
    "Binary Authorization API off": {"apis-enabled"},  # the Policy resource needs that API too
}


@pytest.fixture(scope="module")
def baseline() -> Fleet:
    return valid_fleet()


def test_the_hand_built_fleet_passes_every_rule(baseline: Fleet) -> None:
    assert policy.check(baseline) == [], policy.format_violations(policy.check(baseline))


@pytest.mark.parametrize(("rule", "what", "brk", "phrase"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_each_rule_trips_on_a_broken_fleet(baseline: Fleet, rule: str, what: str, brk: Break, phrase: str) -> None:
    found = tripped(brk(baseline))
    assert rule in found, f"{rule} did not trip on {what}: {found}"
    assert set(found) <= {rule, *ALSO.get(what, set())}, policy.format_violations(
        [v for vs in found.values() for v in vs])
    messages = [v.message for v in found[rule]]
    assert any(phrase in m for m in messages), messages
    assert all(v.mandatory and v.urn for v in found[rule])


def test_every_rule_has_a_breaking_case() -> None:
    assert {rule.name for rule in policy.RULES} == {case[0] for case in CASES}


def test_the_message_names_the_resource_and_what_to_change(baseline: Fleet) -> None:
    [violation] = policy.check(set_input(baseline, "core-use1-a-eastwest-internal", "sourceRanges", ["0.0.0.0/0"]))
    assert violation == policy.Violation(
        "firewall-not-open-to-world", urn(rules.FIREWALL, "core-use1-a-eastwest-internal"),
        "Firewall 'core-use1-a-eastwest-internal': INGRESS rule allows source range 0.0.0.0/0 (the whole internet): "
        "list the exact source ranges", "mandatory")


def test_two_project_numbers_for_one_project_are_reported(baseline: Fleet) -> None:
    # A second cluster of the same project whose own grants name another number: a project has one.
    copied = {r.urn for r in baseline if r.type in (rules.CLUSTER, rules.SUBNET_IAM)
              or (r.type == rules.PROJECT_IAM and r.inputs.get("project") == HOST)}
    second = [dataclasses.replace(
        r, name=f"{r.name}-b", urn=f"{r.urn}-b",
        dependencies=tuple(f"{d}-b" if d in copied else d for d in r.dependencies),
        inputs={**r.inputs, **({"member": r.inputs["member"].replace(NUMBER, "555")} if "member" in r.inputs else {})})
        for r in baseline if r.urn in copied]
    found = tripped([*baseline, *second])["shared-vpc-service-project"]
    assert [v.message for v in found if "different project numbers" in v.message] == [
        f"project {SERVICE}'s service agents are named with different project numbers (123456789012, 555); a "
        f"project has one number: read it once with gcp.organizations.get_project(project_id='{SERVICE}') "
        f"(this cluster's grants use {n})" for n in (NUMBER, "555")]


# ------------------------------------------------------------------------------ unknowns are not violations


@pytest.mark.parametrize(("name", "path", "value"), [
    ("core-use1-a-eastwest-internal", "sourceRanges", COMPUTED),
    ("core-use1-a-eastwest-internal", "sourceRanges", ["10.11.0.0/20", f"{COMPUTED}/32"]),
    ("core-use1-a-eastwest", "values.service.loadBalancerSourceRanges", COMPUTED),
    ("core-use1-a-eastwest", "values.service.loadBalancerSourceRanges", [f"{COMPUTED}/32"]),
    ("core-use1-a-internal-lb", "spec.loadBalancerSourceRanges", COMPUTED),
    ("core-use1-a", "privateClusterConfig.masterIpv4CidrBlock", COMPUTED),
    ("core-us-east1-nat", "enableDynamicPortAllocation", COMPUTED),
    ("core-use1-a", "project", COMPUTED),
])
def test_values_unknown_at_preview_are_not_reported(baseline: Fleet, name: str, path: str, value: Any) -> None:
    fleet = set_input(baseline, name, path, value)
    assert policy.check(fleet) == [], policy.format_violations(policy.check(fleet))


def test_a_policy_reading_an_unknown_is_advisory_as_under_the_engine(baseline: Fleet) -> None:
    # The harness hands props behind the engine's proxy: a raw read of an unknown raises there too.
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type == rules.FIREWALL:
            report(str(list(args.props["sourceRanges"])), None)

    naive = ResourceValidationPolicy("naive", "reads props directly", validate)
    fleet = set_input(baseline, "core-use1-a-eastwest-internal", "sourceRanges", COMPUTED)
    [violation] = policy.check(fleet, [naive])
    assert violation.enforcement == "advisory" and "can't run during preview" in violation.message
    assert violation.message.endswith("string value at .sourceRanges can't be known during preview")


def test_views_unwrap_the_engine_proxies() -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    props = unknown_checking_proxy({"a": {"b": [UNKNOWN_STRING_VALUE, "x"]}, "c": UNKNOWN_STRING_VALUE})
    assert plain(props) == {"a": {"b": [COMPUTED, "x"]}, "c": COMPUTED}


# ------------------------------------------------------------------------------ the pack itself


def test_the_pack_has_one_named_policy_per_rule_each_citing_its_source() -> None:
    policies = policy.policies()
    assert [p.name for p in policies] == [r.name for r in policy.RULES]
    assert len({p.name for p in policies}) == len(policies)
    for p, rule in zip(policies, policy.RULES, strict=True):
        assert isinstance(p, StackValidationPolicy if rule.stack else ResourceValidationPolicy)
        assert "Source: https://" in p.description and p.url == rule.source
        assert p.enforcement_level is None  # the pack's default: mandatory
    assert policy.PACK_ENFORCEMENT.value == "mandatory"


def test_the_policy_project_runs_the_pack_in_the_projects_virtualenv() -> None:
    project = yaml.safe_load((ROOT / "policy/PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (ROOT / "policy" / project["runtime"]["options"]["virtualenv"]).resolve() == (ROOT / ".venv").resolve()
    main = (ROOT / "policy/__main__.py").read_text()
    # Read, never run: PolicyPack(...) starts a gRPC server and blocks.
    assert "PolicyPack(PACK_NAME, enforcement_level=PACK_ENFORCEMENT, policies=policies())" in main


def test_the_computed_marker_is_the_one_preview_writes() -> None:
    assert COMPUTED == preview.COMPUTED


# ------------------------------------------------------------------------------ the real program


@pytest.fixture(scope="module")
def prod() -> preview.PreviewResult:
    return preview.run(stack_fixture.project(), "prod")


def test_prod_passes_every_rule(prod: preview.PreviewResult) -> None:
    """The acceptance test of the pack: the real program declares everything the cloud requires."""
    violations = policy.check(prod.registrations)
    assert violations == [], policy.format_violations(violations)


def test_every_gcp_type_prod_registers_names_its_api(prod: preview.PreviewResult) -> None:
    types = {r.type for r in prod.registrations if r.type.startswith("gcp:") and r.type != rules.API_SERVICE}
    assert types
    assert sorted(t for t in types if api_of(t) is None) == []


def _first(prod: preview.PreviewResult, type_: str) -> Registration:
    found = [r for r in prod.registrations if r.type == type_]
    if not found:
        pytest.skip(f"prod registers no {type_} yet")
    return sorted(found, key=lambda r: r.urn)[0]


def _new(prod: preview.PreviewResult, broken: Fleet, rule: str, at: str) -> list[str]:
    """Messages of `rule` on `at` in the broken variant of prod."""
    return [v.message for v in policy.check(broken) if v.policy == rule and v.urn == at]


def _with(inputs: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(inputs))
    node = copy
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return copy


def _replace(fleet: Fleet, target: Registration, **changes: Any) -> Fleet:
    return [dataclasses.replace(r, **changes) if r.urn == target.urn else r for r in fleet]


def test_prod_broken_vulnerability_basic(prod: preview.PreviewResult) -> None:
    cluster = _first(prod, rules.CLUSTER)
    broken = [dataclasses.replace(r, inputs=_with(r.inputs, "securityPostureConfig.vulnerabilityMode",
                                                 "VULNERABILITY_BASIC")) if r.urn == cluster.urn else r
              for r in prod.registrations]
    assert any("VULNERABILITY_BASIC" in m for m in _new(prod, broken, "no-withdrawn-gke-fields", cluster.urn))


def test_prod_broken_firewall_open_to_the_world(prod: preview.PreviewResult) -> None:
    rule = next(r for r in prod.registrations if r.type == rules.FIREWALL and "istio-webhook" in r.name)
    broken = _replace(prod.registrations, rule, inputs=_with(rule.inputs, "sourceRanges", ["0.0.0.0/0"]))
    assert _new(prod, broken, "firewall-not-open-to-world", rule.urn)


def test_prod_broken_unprotected_key(prod: preview.PreviewResult) -> None:
    key = _first(prod, rules.PRIVATE_KEY)
    assert _new(prod, _replace(prod.registrations, key, protect=False), "ca-keys-protected", key.urn)


def test_prod_broken_kubernetes_resource_on_the_default_provider(prod: preview.PreviewResult) -> None:
    istiod = next(r for r in prod.registrations if r.type == rules.HELM_RELEASE and "-istiod" in r.name)
    broken = _replace(prod.registrations, istiod, provider="")
    assert _new(prod, broken, "kubernetes-explicit-provider", istiod.urn)


def test_prod_broken_load_balancer_without_source_ranges(prod: preview.PreviewResult) -> None:
    def load_balancer(r: Registration) -> str | None:  # the path of its source ranges
        if r.type == rules.K8S_SERVICE and (r.inputs.get("spec") or {}).get("type") == "LoadBalancer":
            return "spec.loadBalancerSourceRanges"
        service = (r.inputs.get("values") or {}).get("service") or {} if r.type == rules.HELM_RELEASE else {}
        gateway = str(r.inputs.get("chart", "")).endswith("gateway") and service.get("type", "LoadBalancer")
        return "values.service.loadBalancerSourceRanges" if gateway == "LoadBalancer" else None

    balancers = sorted((r for r in prod.registrations if load_balancer(r)), key=lambda r: r.urn)
    assert balancers, "prod declares no load balancer"
    for target in balancers[:3]:
        path = load_balancer(target)
        assert path is not None
        broken = _replace(prod.registrations, target, inputs=_with(target.inputs, path, []))
        assert _new(prod, broken, "load-balancer-source-ranges", target.urn), target.urn


def test_prod_broken_unprotected_cluster(prod: preview.PreviewResult) -> None:
    cluster = _first(prod, rules.CLUSTER)
    assert _new(prod, _replace(prod.registrations, cluster, protect=False), "gke-cluster-protected", cluster.urn)


def test_prod_broken_without_the_shared_vpc_attachment(prod: preview.PreviewResult) -> None:
    attachment = _first(prod, rules.SERVICE_PROJECT)
    broken = [r for r in prod.registrations if r.urn != attachment.urn]
    clusters = [r.urn for r in prod.registrations if r.type == rules.CLUSTER
                and r.inputs.get("project") == attachment.inputs["serviceProject"]]
    assert clusters and all(_new(prod, broken, "shared-vpc-service-project", c) for c in clusters)


def test_prod_broken_one_service_project_on_two_hosts(prod: preview.PreviewResult) -> None:
    attachment = _first(prod, rules.SERVICE_PROJECT)
    second = dataclasses.replace(attachment, urn=attachment.urn + "-twice", name=attachment.name + "-twice",
                                 inputs={**attachment.inputs, "hostProject": "acme-net-elsewhere"})
    assert _new(prod, [*prod.registrations, second], "one-host-per-service-project", second.urn)


def test_prod_broken_resource_not_waiting_for_its_api(prod: preview.PreviewResult) -> None:
    services = {r.urn for r in prod.registrations if r.type == rules.API_SERVICE}
    if not services:
        pytest.skip("prod enables no APIs yet")
    cluster = _first(prod, rules.CLUSTER)
    broken = _replace(prod.registrations, cluster, dependencies=tuple(d for d in cluster.dependencies
                                                                      if d not in services))
    assert _new(prod, broken, "apis-enabled", cluster.urn)


# ------------------------------------------------------------------------------ mesh preview


def _fake_preview(monkeypatch: pytest.MonkeyPatch, fleet: Fleet) -> None:
    monkeypatch.setattr(preview, "run",
                        lambda project_dir, stack, **options: preview.PreviewResult(stack, "fleet-mesh", fleet))


def test_mesh_preview_fails_on_a_mandatory_violation(monkeypatch: pytest.MonkeyPatch, baseline: Fleet,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _fake_preview(monkeypatch, drop(baseline, "attachment"))
    assert cli.main(["preview", "--no-tree"]) == 1
    err = capsys.readouterr().err
    assert "[mandatory] shared-vpc-service-project" in err
    assert f"{SERVICE} is not attached to {HOST}" in err
    assert f"policy pack: {len(policy.RULES)} rules, 1 violation(s) of 1 rule(s), 1 mandatory" in err


def test_mesh_preview_reports_a_clean_pack(monkeypatch: pytest.MonkeyPatch, baseline: Fleet,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _fake_preview(monkeypatch, baseline)
    assert cli.main(["preview", "--no-tree"]) == 0
    assert f"policy pack: {len(policy.RULES)} rules, no violations" in capsys.readouterr().out


def test_mesh_preview_no_policy_skips_the_pack(monkeypatch: pytest.MonkeyPatch, baseline: Fleet,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _fake_preview(monkeypatch, drop(baseline, "attachment"))
    assert cli.main(["preview", "--no-tree", "--no-policy"]) == 0
    assert "policy pack" not in capsys.readouterr().err


def test_mesh_preview_output_is_stable(monkeypatch: pytest.MonkeyPatch, baseline: Fleet,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = set_input(set_input(baseline, "mesh-pki-root-key", "algorithm", "RSA"), "core-use1-a",
                       "enableLegacyAbac", True)
    broken = edit(drop(broken, "binauthz"), "mesh-pki-root-key", protect=False)
    _fake_preview(monkeypatch, broken)
    cli.main(["preview", "--no-tree"])
    first = capsys.readouterr().err
    _fake_preview(monkeypatch, list(reversed(broken)))
    cli.main(["preview", "--no-tree"])
    assert capsys.readouterr().err == first
    order = [line.split("]")[1].split(":")[0].strip() for line in first.splitlines() if line.startswith("[")]
    assert order == sorted(order) == ["binary-authorization-policy", "ca-keys-protected", "no-withdrawn-gke-fields"]


def test_mesh_preview_of_a_stack_opening_the_gateways_to_the_world(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The real program, with stack config that opens the external east-west gateways to everyone."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    config = yaml.safe_load((stack_fixture.FIXTURE / "Pulumi.prod.yaml").read_text())["config"]
    config["mesh:manifest"] = str(stack_fixture.STACK)
    config["mesh:eastWestSourceRanges"] = ["0.0.0.0/0"]
    (tmp_path / "Pulumi.open.yaml").write_text(yaml.safe_dump({"config": config}))
    try:
        preview.run(tmp_path, "open")
    except pulumi.RunError as exc:
        pytest.fail(f"the program does not run with this stack config: {exc}")
    assert cli.main(["preview", "--no-tree", "--stack", "open", "--project-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "[mandatory] firewall-not-open-to-world" in err
    assert "eastwest-external': INGRESS rule allows source range 0.0.0.0/0" in err


# ------------------------------------------------------------------------------ the engine's own analyzer


def _engine_findings(fleet: Fleet) -> set[tuple[str, str, str]]:
    """What pulumi_policy's analyzer servicer (the code `pulumi preview --policy-pack` talks to over gRPC)
    reports for these resources, called directly: no server is started."""
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    from mesh.policy.harness import _engine_value

    def struct(value: dict[str, Any]) -> struct_pb2.Struct:
        out = struct_pb2.Struct()
        out.update(_engine_value(value))
        return out

    by_urn = {r.urn: r for r in fleet}

    def resource(r: Registration) -> dict[str, Any]:
        provider = by_urn.get(r.provider)
        return {
            "type": r.type, "properties": struct(r.inputs), "urn": r.urn, "name": r.name,
            "options": analyzer_pb2.AnalyzerResourceOptions(protect=r.protect, parent=r.parent),
            "provider": analyzer_pb2.AnalyzerProviderResource(
                type=provider.type, properties=struct(provider.inputs), urn=provider.urn, name=provider.name)
            if provider else None,
        }

    servicer = _PolicyAnalyzerServicer(policy.PACK_NAME, "0.1.0", policy.policies(), policy.PACK_ENFORCEMENT)
    found = set()
    for r in fleet:
        if r.custom:  # the engine ties a resource policy's diagnostics to the resource analyzed
            for d in servicer.Analyze(analyzer_pb2.AnalyzeRequest(**resource(r)), None).diagnostics:
                found.add((d.policyName, d.urn or r.urn, d.message.split("\n", 1)[1]))
    stack = [analyzer_pb2.AnalyzerResource(**resource(r), dependencies=list(r.dependencies)) for r in fleet]
    for d in servicer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=stack), None).diagnostics:
        found.add((d.policyName, d.urn, d.message.split("\n", 1)[1]))
    return found


def test_the_engines_analyzer_reports_what_check_reports(baseline: Fleet) -> None:
    broken = drop(set_input(edit(baseline, "mesh-pki-root-key", protect=False), "core-use1-a-eastwest-internal",
                            "sourceRanges", ["0.0.0.0/0", f"{COMPUTED}/32"]), "subnet-cloudservices")
    broken = edit(broken, "core-use1-a-eastwest", provider="")
    expected = {(v.policy, v.urn, v.message) for v in policy.check(broken)}
    assert {rule for rule, _, _ in expected} == {
        "ca-keys-protected", "firewall-not-open-to-world", "shared-vpc-service-project", "kubernetes-explicit-provider"}
    assert _engine_findings(broken) == expected
    assert _engine_findings(baseline) == set()


def test_prod_broken_kms_key_created_before_its_api(prod: preview.PreviewResult) -> None:
    # A CryptoKey names no project; the rule finds it through its key ring, and still wants the API first.
    key = _first(prod, "gcp:kms/cryptoKey:CryptoKey")
    api = next(r for r in prod.registrations if r.type == rules.API_SERVICE and r.urn in key.dependencies)
    broken = _replace(prod.registrations, key, dependencies=tuple(d for d in key.dependencies if d != api.urn))
    [message] = _new(prod, broken, "apis-enabled", key.urn)
    assert "does not depend on" in message and "cloudkms.googleapis.com" in message
