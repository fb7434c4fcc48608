#!/usr/bin/env python3
"""Benchmark: load + validate + compile, and render, on synthetic fleets (S, L, XL).

    python bench/run.py [S L XL] [--runs N]

Fleets come from bench/fleetgen.py, written as files the way a real stack is, and cached under
bench/.fleets/. Every measurement runs in a fresh subprocess (so peak RSS is that stage's own) and
is repeated; the median is printed. Figures:

- parse: reading every file with `yaml.CSafeLoader` alone, the baseline (wall and CPU time: the
  latter is steadier on a shared virtual machine);
- compile: `mesh.manifest.load` (parse, schema, rules, model) + `compile_fleet`, and its ratio
  to parse (target on L: ≤ 3×);
- render: compile + `mesh.render.write` to a temporary folder;
- peak RSS per stage (target on L: ≤ 1 GiB);
- objects emitted per kind against the full-mesh baseline (every service configured in every
  cluster), and `verify` problems (target: 0 — no object a correct render could do without);
- XL/L: time ratio against output-size ratio (target: within 1.3×, i.e. cost linear in output).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FLEETS = HERE / ".fleets"
sys.path[:0] = [str(ROOT), str(HERE)]


# ------------------------------------------------------------------------------ worker side


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _work_parse(fleet: Path) -> dict[str, Any]:
    import yaml

    start, cpu = time.perf_counter(), time.process_time()
    documents = 0
    for path in sorted(fleet.rglob("*.yaml")):
        documents += len(list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)))
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "documents": documents}


def _work_compile(fleet: Path) -> dict[str, Any]:
    from mesh.compile import compile_fleet
    from mesh.manifest import load

    start, cpu = time.perf_counter(), time.process_time()
    world = load(fleet).world
    loaded = time.perf_counter()
    compiled = compile_fleet(world)
    done = time.perf_counter()
    return {"seconds": done - start, "cpu_seconds": time.process_time() - cpu,
            "load_seconds": loaded - start, "compile_seconds": done - loaded,
            "objects": sum(len(objects) for objects in compiled.values())}


def _work_render(fleet: Path) -> dict[str, Any]:
    from mesh import render
    from mesh.compile import compile_fleet
    from mesh.manifest import load

    start, cpu = time.perf_counter(), time.process_time()
    compiled = compile_fleet(load(fleet).world)
    compiled_at = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        render.write(Path(out) / "render", compiled)
        size = sum(p.stat().st_size for p in (Path(out) / "render").rglob("*.yaml"))
        written = time.perf_counter()
    return {"seconds": written - start, "cpu_seconds": time.process_time() - cpu,
            "render_seconds": written - compiled_at, "bytes": size}


def _work_audit(fleet: Path) -> dict[str, Any]:
    """Counts per kind, the full-mesh baseline, and the verifier's verdict (not timed)."""
    from collections import Counter

    from mesh.compile import compile_fleet
    from mesh.manifest import load
    from mesh.verify import verify

    world = load(fleet).world
    compiled = compile_fleet(world)
    kinds = Counter(obj["kind"] for objects in compiled.values() for obj in objects)
    endpoints = sum(len(o["spec"].get("endpoints", ())) for objects in compiled.values() for o in objects
                    if o["kind"] == "ServiceEntry")
    return {"kinds": dict(sorted(kinds.items())), "inline_endpoints": endpoints,
            "baseline": _full_mesh(world), "problems": verify(world, compiled)[:20]}


def _full_mesh(world: Any) -> dict[str, int]:
    """Objects if every cluster held every service (no demand scoping): the naive design."""
    clusters, services = len(world.clusters), len(world.services)
    placements = sum(len(world.clusters_of(s)) for s in world.services)
    with_vs = sum(1 for s in world.services.values() if (s.traffic and (s.traffic.timeout or s.traffic.retries))
                  or world.is_weighted(s.name))
    return {
        "Namespace": clusters * len(set(world.namespace_of.values())),
        "ServiceEntry": clusters * services,
        "DestinationRule": clusters * services,
        "VirtualService": clusters * with_vs,
        # every location seen from every other cluster (as WorkloadEntry or inline endpoint)
        "remote endpoints": placements * (clusters - 1),
    }


WORKERS = {"parse": _work_parse, "compile": _work_compile, "render": _work_render, "audit": _work_audit}


# ------------------------------------------------------------------------------ driver side


def _measure(stage: str, fleet: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, "--worker", stage, str(fleet)],
                            capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))


def _measure_rounds(fleet: Path, runs: int) -> dict[str, list[dict[str, Any]]]:
    """Stages interleaved round by round, so a slow spell of a shared machine hits all of them."""
    stages: dict[str, list[dict[str, Any]]] = {"parse": [], "compile": [], "render": []}
    for _ in range(runs):
        for stage, results in stages.items():
            results.append(_measure(stage, fleet))
    return stages


def _fleet(size: str) -> Path:
    from fleetgen import generate

    path = FLEETS / size
    if not (path / "fleet.yaml").is_file():
        print(f"generating fleet {size} …", file=sys.stderr)
        generate(size, path, force=True)
    return path


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def bench(size: str, runs: int) -> dict[str, Any]:
    fleet = _fleet(size)
    stages = _measure_rounds(fleet, runs)
    figures: dict[str, Any] = {"size": size, "runs": runs}
    for stage, results in stages.items():
        figures[stage] = {key: _median(results, key) for key in results[0] if isinstance(results[0][key], float)}
        figures[stage]["peak_rss_mib"] = _median(results, "peak_rss_mib")
    figures["objects"] = stages["compile"][0]["objects"]
    figures["bytes"] = stages["render"][0]["bytes"]
    figures["audit"] = _measure("audit", fleet)
    return figures


def report(figures: dict[str, Any]) -> None:
    parse, compiled, rendered = figures["parse"], figures["compile"], figures["render"]
    ratio = compiled["seconds"] / parse["seconds"]
    cpu_ratio = compiled["cpu_seconds"] / parse["cpu_seconds"]
    print(f"\n== {figures['size']}  (median of {figures['runs']} runs, each in a fresh process)")
    print(f"parse (CSafeLoader only)      {parse['seconds']:7.2f} s   peak {parse['peak_rss_mib']:6.0f} MiB")
    print(f"load+validate+compile         {compiled['seconds']:7.2f} s   peak {compiled['peak_rss_mib']:6.0f} MiB"
          f"   = {ratio:.2f}x parse  (load {compiled['load_seconds']:.2f} s, compile "
          f"{compiled['compile_seconds']:.2f} s; CPU time {cpu_ratio:.2f}x)")
    print(f"render (compile + write YAML) {rendered['seconds']:7.2f} s   peak {rendered['peak_rss_mib']:6.0f} MiB"
          f"   (writing {rendered['render_seconds']:.2f} s, {figures['bytes'] / 2**20:.0f} MiB)")
    audit = figures["audit"]
    kinds, baseline = audit["kinds"], audit["baseline"]
    remote = kinds.get("WorkloadEntry", 0) + audit["inline_endpoints"]
    print(f"objects emitted               {figures['objects']:,}")
    print("per kind (emitted / full mesh):")
    for kind, count in kinds.items():
        full = baseline.get(kind)
        print(f"  {kind:20s} {count:>9,}" + (f" / {full:>11,}  ({count / full:.1%})" if full else ""))
    full_remote = baseline["remote endpoints"]
    print(f"  {'remote endpoints':20s} {remote:>9,} / {full_remote:>11,}  ({remote / full_remote:.1%})"
          f"   [{kinds.get('WorkloadEntry', 0):,} WorkloadEntries + {audit['inline_endpoints']:,} inline]")
    print(f"verify problems (incl. unneeded objects): {len(audit['problems'])}")
    for problem in audit["problems"]:
        print(f"  {problem}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", metavar="SIZE", help="S, L or XL (default: S L)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--worker", nargs=2, metavar=("STAGE", "FLEET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        stage, fleet = args.worker
        result = WORKERS[stage](Path(fleet))  # times are taken inside, after imports
        result["peak_rss_mib"] = _peak_rss_mib()
        print(json.dumps(result))
        return 0
    sizes = args.sizes or ["S", "L"]
    unknown = sorted(set(sizes) - {"S", "L", "XL"})
    if unknown:
        parser.error(f"unknown size {unknown[0]}; choose from S, L, XL")
    results = {size: bench(size, args.runs if size != "XL" else max(1, min(args.runs, 3))) for size in sizes}
    for figures in results.values():
        report(figures)
    if "L" in results and "XL" in results:
        large, huge = results["L"], results["XL"]
        time_ratio = huge["compile"]["cpu_seconds"] / large["compile"]["cpu_seconds"]
        size_ratio = huge["objects"] / large["objects"]
        print(f"\nXL/L: CPU time {time_ratio:.2f}x, output {size_ratio:.2f}x objects "
              f"→ {time_ratio / size_ratio:.2f} (target ≤ 1.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
