#!/usr/bin/env python3
"""Benchmark: what each resource option costs at registration under Pulumi's mock engine.

    .venv/bin/python bench/registration_factors.py [--count 3000] [--runs 5]

Registers `count` small CustomResources in a fresh process per case and prints the median
milliseconds per resource: bare; under a parent component; with an explicit provider; with one and
with two `depends_on` entries; behind a dependency chain of 5 and 15 resources; behind a 15-chain
awaited before the objects are created; and created in an `apply` on the chain's last URN, still
depending on it (what `mesh/infra/mesh_config.py` does). Figures: bench/README.md (Pulumi program).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("bare", "parent", "provider", "one-dependency", "two-dependencies", "chain-5", "chain-15", "chain-15-awaited",
         "chain-15-in-apply")


def _work(case: str, count: int) -> float:
    sys.path.insert(0, str(ROOT))
    import pulumi
    import pulumi_kubernetes as k8s
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.stack import wait_for_rpcs

    from mesh.preview import OfflineMocks

    spec = {"hosts": ["a.svc.acme.example"], "ports": [{"number": 8080, "name": "http-8080", "protocol": "HTTP"}]}

    class Parent(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("bench:index:Parent", "parent", None, None)
            self.register_outputs({})

    async def go() -> float:
        mocks = OfflineMocks()
        pulumi.runtime.set_mocks(mocks, project="bench", stack="bench", preview=False, monitor=MockMonitor(mocks))
        start = time.perf_counter()
        parent = Parent() if case == "parent" else None
        provider = k8s.Provider("k8s", kubeconfig="{}") if case == "provider" else None
        chain: list[pulumi.Resource] = []
        links = {"one-dependency": 1, "two-dependencies": 2, "chain-5": 5}.get(case, 15 if "chain-15" in case else 0)
        for i in range(links):
            chained = case.startswith("chain")
            chain.append(k8s.core.v1.Namespace(f"ns{i}", metadata={"name": f"ns{i}"}, opts=pulumi.ResourceOptions(
                depends_on=chain[-1:] if chained else None)))
        if case == "chain-15-awaited":
            await chain[-1].urn.future()
        depends = chain[-1:] if case.startswith("chain") else chain

        def objects(_: object = None) -> None:
            for i in range(count):
                k8s.apiextensions.CustomResource(
                    f"r{i}", api_version="networking.istio.io/v1", kind="ServiceEntry",
                    metadata={"name": f"r{i}", "namespace": "a"}, spec=spec,
                    opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends or None))

        if case == "chain-15-in-apply":
            chain[-1].urn.apply(objects)
        else:
            objects()
        await wait_for_rpcs()
        return (time.perf_counter() - start) / count * 1000

    return asyncio.run(go())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_work(args.worker[0], int(args.worker[1]))))
        return 0
    for case in CASES:
        runs = [float(subprocess.run([sys.executable, __file__, "--worker", case, str(args.count)], check=True,
                                     capture_output=True, text=True).stdout.splitlines()[-1])
                for _ in range(args.runs)]
        print(f"{case:18} {statistics.median(runs):.2f} ms/resource (median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
