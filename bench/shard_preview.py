#!/usr/bin/env python3
"""Benchmark: `mesh shards` on a synthetic fleet, then `mesh preview` of its largest stacks.

    python bench/shard_preview.py L [--by cluster] [--largest 2] [--runs 3]

Writes the proposed stack files into a scratch project (the repository's Pulumi.yaml and
__main__.py, the fleet from bench/.fleets, a provided root CA as every shard needs), then previews
the largest stack that manages a cluster and the largest that holds only a part of one, each in a
fresh `mesh --quiet preview` process under /usr/bin/time, and prints wall time and peak RSS
(medians). Targets (issue #11): any L shard under 60 s and 1 GiB; XL's largest under 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]


def _project(fleet: Path, by: str, folder: Path) -> list[dict[str, object]]:
    from mesh import shards
    from mesh.compile import compile_fleet
    from mesh.manifest import load

    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, folder / name)
    world = load(fleet).world
    proposal = shards.propose(world, compile_fleet(world), by)
    base = {"mesh:manifest": str(fleet), "mesh:istioVersion": "1.31.1", "mesh:ingressSourceRanges": ["198.51.100.0/25"],
            "mesh:rootCaCertificate": (ROOT / "tests/fixtures/root-ca.pem").read_text()}
    for name, text in shards.stack_files(proposal, base, "bench", "fleet-mesh", "bench").items():
        config = yaml.safe_load(text)["config"]
        if "mesh:clusters" in config:
            config["mesh:rootCaKey"] = {"secure": "v1:bench"}
        (folder / name).write_text(json.dumps({"config": config}))
    return [{"stack": f"bench-{s.name}", "resources": s.resources, "part": s.part_only, "over": s.over(3000)}
            for s in proposal]


def _preview(folder: Path, stack: str) -> tuple[float, float]:
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "mesh", "--quiet", "preview",
                           "--no-tree", "--stack", stack, "--project-dir", str(folder)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"preview of {stack} failed:\n{done.stderr[-2000:]}")
    seconds, kib = done.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kib) / 1024


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("size", choices=("S", "L", "XL"))
    parser.add_argument("--by", default="cluster", choices=("cluster", "region", "tier"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    from run import _fleet

    fleet = _fleet(args.size)
    with tempfile.TemporaryDirectory(prefix="fleet-mesh-shards-") as scratch:
        folder = Path(scratch)
        stacks = _project(fleet, args.by, folder)
        sizes = sorted(int(str(s["resources"])) for s in stacks)
        print(f"{args.size} by {args.by}: {len(stacks)} stacks ({sum(1 for s in stacks if s['part'])} hold a part "
              f"only), resources median {statistics.median(sizes):,.0f}, max {sizes[-1]:,}, "
              f"over 3,000: {sum(1 for s in stacks if s['over'])}")
        for part in (False, True):
            candidates = [s for s in stacks if s["part"] is part]
            if not candidates:
                continue
            largest = max(candidates, key=lambda s: int(str(s["resources"])))
            runs = [_preview(folder, str(largest["stack"])) for _ in range(args.runs)]
            what = "part only" if part else "manages a cluster"
            print(f"  preview {largest['stack']} ({largest['resources']:,} resources, {what}): "
                  f"median {statistics.median(r[0] for r in runs):.1f} s, "
                  f"peak RSS {max(r[1] for r in runs):,.0f} MiB ({args.runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
