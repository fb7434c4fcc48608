"""Pictures of the fleet: Graphviz source always, SVG where Graphviz is installed (CI installs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mesh import graph
from mesh.manifest import load

import stack_fixture

ROOT = stack_fixture.project()


def test_dot_groups_clusters_by_region_and_marks_cross_cluster_calls() -> None:
    dot = graph.as_dot(load(ROOT / "stacks/prod").world)
    assert dot.startswith("digraph fleet {")
    assert 'subgraph "cluster_region_us-east1"' in dot and 'subgraph "cluster_core-use1-a"' in dot
    assert '"core-use1-a/payments" -> "core-use1-a/fraud" [style=solid' in dot  # inside one
    # Across clusters, the way traffic goes: caller → its east-west gateway ⇢ the callee's → callee,
    # one labelled arrow per pair of clusters instead of one per call.
    gateway = graph.EAST_WEST
    assert f'"core-use1-a/payments" -> "core-use1-a/{gateway}" [style=dashed' in dot
    assert f'"core-use1-a/{gateway}" -> "data-use1-a/{gateway}" [style=dashed, penwidth=1.5, xlabel="' in dot
    assert f'"data-use1-a/{gateway}" -> "data-use1-a/ledger" [style=dashed' in dot
    assert '"core-use1-a/payments" -> "data-use1-a/ledger"' not in dot
    assert "legend" in dot and 'label="search\\n90%"' in dot and 'label="ledger\\nstandby"' in dot
    pairs = [line for line in dot.splitlines() if "penwidth=1.5" in line]
    assert len(pairs) == len({(a, b) for a, b in (line.split(" -> ") for line in pairs)})  # one per pair


def test_a_diff_picture_of_no_change_says_so() -> None:
    world = load(ROOT / "stacks/prod").world
    dot = graph.diff_dot(world, world)
    assert "no changes to calls or placements" in dot and "->" not in dot


def test_diff_picture_shows_only_what_changed(tmp_path: Path) -> None:
    head = tmp_path / "stack"
    shutil.copytree(ROOT / "stacks/prod", head)
    services = head / "services/payments.yaml"
    services.write_text(services.read_text().replace("  - currency.svc.acme.example\n",
                                                     "  - currency.svc.acme.example\n  - reviews.svc.acme.example\n"))
    dot = graph.diff_dot(load(ROOT / "stacks/prod").world, load(head).world)
    edges = [line for line in dot.splitlines() if "->" in line]
    assert edges == ['  "core-use1-a/payments" -> "core-usw1-a/reviews" [style=dashed, color=darkgreen];']
    assert '"core-use1-a/fraud"' not in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed (CI installs it)")
def test_svg_is_rendered_by_graphviz() -> None:
    svg = graph.to_svg(graph.as_dot(load(ROOT / "stacks/prod").world))
    assert "<svg" in svg and "payments" in svg


def test_svg_without_graphviz_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(graph.GraphvizMissing, match="apt-get install graphviz"):
        graph.to_svg("digraph {}")
