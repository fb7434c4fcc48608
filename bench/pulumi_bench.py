#!/usr/bin/env python3
"""Benchmark: the Pulumi program registering fleet L under the mock engine.

    python bench/pulumi_bench.py [--runs N] [--clusters K]

1. Registration cost: one shard of fleet L (its K largest clusters by object count, default 1)
   under `pulumi.runtime.set_mocks`, against a bare loop registering the same number of
   `kubernetes.apiextensions.CustomResource`s — the SDK's own floor. Target: ≤ 1.2× per resource.
2. Resources per stack for L under the documented sharding (one stack per cluster, plus none
   shared: networks go with their first cluster's stack): counted from the compiled fleet and the
   per-cluster infrastructure measured in step 1. Target: ≤ 3,000 per stack.
Each measurement runs in a fresh process; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

# A real certificate (public part only): the stack config parses a provided root.
FAKE_ROOT = (ROOT / "tests" / "fixtures" / "root-ca.pem").read_text()


def _mocks(config: dict[str, str]) -> Any:
    # The same mocks for the program and the floor, so both pay the same engine-side cost; pinned
    # external addresses are answered as existing reservations, as `mesh preview` answers them.
    from mesh.preview import OfflineMocks, OfflineWorld, assumed_reservations

    return OfflineMocks(OfflineWorld(reservations=assumed_reservations(ROOT, config)))


def _preimport() -> None:
    """Import what the program uses before timing, in both runs: the figure is registration, not
    imports (pulumi_gcp loads its subpackages lazily, ~1 s on first touch)."""
    import pulumi_gcp
    import pulumi_kubernetes
    import pulumi_tls

    import mesh.program  # noqa: F401

    # Naming a lazy subpackage does not load it; reading one of its attributes does.
    for module in (pulumi_gcp.compute, pulumi_gcp.container, pulumi_gcp.projects, pulumi_gcp.serviceaccount,
                   pulumi_gcp.kms, pulumi_gcp.dns, pulumi_gcp.organizations, pulumi_gcp.binaryauthorization,
                   pulumi_kubernetes.core.v1, pulumi_kubernetes.helm.v3, pulumi_kubernetes.apiextensions, pulumi_tls):
        getattr(module, "__all__", None)


def _timed(program: Any, config: dict[str, str], secrets: list[str]) -> dict[str, Any]:
    import pulumi

    _preimport()
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.stack import wait_for_rpcs

    # The mocks answer lookups from the manifest (pinned reservations): built before the clock
    # starts, since they stand in for the cloud and are no part of the program's cost.
    mocks = _mocks(config)

    async def go() -> dict[str, Any]:
        pulumi.runtime.set_all_config(config, secrets)
        monitor = MockMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project="fleet-mesh", stack="bench", preview=False, monitor=monitor)
        start = time.perf_counter()
        program()
        await wait_for_rpcs()
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "resources": len(monitor.get_registered_resources())}

    return asyncio.run(go())


def _work_program(fleet: Path, clusters: list[str]) -> dict[str, Any]:
    import runpy

    config = {"mesh:manifest": str(fleet), "mesh:istioVersion": "1.31.1", "mesh:clusters": json.dumps(clusters),
              "mesh:rootCaCertificate": FAKE_ROOT, "mesh:rootCaKey": "bench-key",
              "mesh:eastWestSourceRanges": json.dumps(["100.64.0.0/10"]),
              "mesh:ingressSourceRanges": json.dumps(["198.51.100.0/25"])}
    return _timed(lambda: runpy.run_path(str(ROOT / "__main__.py")), config, ["mesh:rootCaKey"])


def _work_floor(fleet: Path, clusters: list[str], count: int) -> dict[str, Any]:
    """The same shard's compiled objects (padded to the program's resource count), registered as bare
    CustomResources: no components, providers or dependencies. Loading and compiling the fleet is
    included, as in the program run, so the ratio compares registration alone."""
    def program() -> None:
        import pulumi_kubernetes as k8s

        from mesh.compile import compile_fleet
        from mesh.manifest import load

        compiled = compile_fleet(load(fleet).world, clusters=clusters)  # what the program compiles
        objects = [o for c in clusters for o in compiled[c]]
        for i in range(count):
            obj = objects[i % len(objects)]
            k8s.apiextensions.CustomResource(
                f"floor-{i}", api_version=obj["apiVersion"], kind=obj["kind"], metadata=obj["metadata"],
                spec=obj.get("spec", {}))

    return _timed(program, {}, [])


def _subprocess(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.splitlines()[-1]))


def _largest_clusters(fleet: Path, count: int) -> tuple[list[str], dict[str, int]]:
    from mesh.compile import compile_fleet
    from mesh.manifest import load

    compiled = compile_fleet(load(fleet).world)
    sizes = {name: len(objects) for name, objects in compiled.items()}
    return sorted(sizes, key=lambda n: (-sizes[n], n))[:count], sizes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        if kind == "program":
            result = _work_program(Path(rest[0]), rest[1:])
        else:
            result = _work_floor(Path(rest[0]), rest[2:], int(rest[1]))
        print(json.dumps(result))
        return 0
    from fleetgen import generate

    fleet = HERE / ".fleets" / "L"
    if not (fleet / "fleet.yaml").is_file():
        generate("L", fleet, force=True)
    shard, sizes = _largest_clusters(fleet, args.clusters)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "L"
        shutil.copytree(fleet, copy)
        program, floor = [], []
        for _ in range(args.runs):  # interleaved, so a slow spell of the machine hits both
            program.append(_subprocess("program", str(copy), *shard))
            floor.append(_subprocess("floor", str(copy), str(program[0]["resources"]), *shard))
    count = program[0]["resources"]
    program_ms = statistics.median(r["seconds"] for r in program) / count * 1000
    floor_ms = statistics.median(r["seconds"] for r in floor) / count * 1000
    objects = sum(sizes[c] for c in shard)
    infra = (count - objects) / len(shard)
    per_stack = {name: round(size + infra) for name, size in sizes.items()}
    worst = max(per_stack, key=lambda n: per_stack[n])
    print(f"shard of L: {', '.join(shard)} — {count:,} resources ({objects:,} mesh objects, "
          f"{infra:.0f} infrastructure per cluster), median of {args.runs} runs")
    print(f"program: {program_ms:.2f} ms/resource   same objects as bare CustomResources: {floor_ms:.2f} ms/resource   "
          f"ratio {program_ms / floor_ms:.2f}x (target ≤ 1.2)")
    print(f"one stack per cluster on L: median {statistics.median(per_stack.values()):,.0f}, max "
          f"{per_stack[worst]:,} ({worst}) resources per stack (target ≤ 3,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
