"""`mesh`: validate, render and draw a fleet-mesh manifest.

Exit status: 0 on success, 1 when the manifest has errors or output cannot be written, 2 on a
command-line mistake. User mistakes are reported as messages, never as tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mesh import __version__, graph, render
from mesh.compile import CompileOptions, compile_fleet
from mesh.diagnostics import Diagnostic, ManifestError
from mesh.manifest import Loaded, load
from mesh.manifest import schema as manifest_schema
from mesh.model import World
from mesh.verify import verify

DEFAULT_STACK = Path("stacks/prod")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ManifestError as exc:
        _print_diagnostics(exc.diagnostics)
        print(f"{len(exc.diagnostics)} error(s); nothing was written.", file=sys.stderr)
        return 1
    except render.RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesh",
        description="Compile a fleet-mesh manifest (fleet, services, locations) into every "
        "cluster's Istio configuration.",
    )
    parser.add_argument("--version", action="version", version=f"fleet-mesh {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check the manifest; report every error at once")
    _add_path(validate)
    validate.set_defaults(run=_validate)

    render_cmd = commands.add_parser(
        "render", help="write every cluster's objects as YAML, one folder per cluster"
    )
    _add_path(render_cmd)
    render_cmd.add_argument("--out", type=Path, required=True, metavar="DIR",
                            help="output folder; replaced whole on every run")
    render_cmd.add_argument("--revision", default=None,
                            help="Istio revision for injection labels (default: istio-injection)")
    render_cmd.set_defaults(run=_render)

    graph_cmd = commands.add_parser("graph", help="print services, locations and calls")
    _add_path(graph_cmd)
    graph_cmd.add_argument("--format", choices=("json", "mermaid", "dot", "svg"), default="json",
                           help="svg needs Graphviz's dot")
    graph_cmd.set_defaults(run=_graph)

    preview_cmd = commands.add_parser(
        "preview", help="run the Pulumi program offline under Pulumi's mock engine and show what it declares")
    preview_cmd.add_argument("--stack", default="prod", help="stack whose Pulumi.<stack>.yaml to use (default: prod)")
    preview_cmd.add_argument("--snapshot", type=Path, metavar="FILE",
                             help="also write the normalized desired state (JSON) to FILE")
    preview_cmd.add_argument("--no-tree", action="store_true", help="print only the summary")
    preview_cmd.add_argument("--no-policy", action="store_true",
                             help="skip the policy pack (the cloud's apply-time rules, policy/)")
    preview_cmd.add_argument("--project-dir", type=Path, default=Path("."), help=argparse.SUPPRESS)
    preview_cmd.set_defaults(run=_preview)

    diff_cmd = commands.add_parser(
        "diff", help="what a change does: intent, blast radius and objects, between two manifests")
    diff_cmd.add_argument("base", nargs="?", metavar="BASE",
                          help="a manifest path or git ref[:path] (default: merge-base with main)")
    diff_cmd.add_argument("head", nargs="?", default=str(DEFAULT_STACK), metavar="HEAD",
                          help=f"a manifest path or git ref[:path] (default: {DEFAULT_STACK} in the working tree)")
    diff_cmd.add_argument("--format", choices=("text", "markdown", "json", "dot", "svg"), default="text",
                          help="dot/svg: a picture of the changed calls and placements (svg needs Graphviz)")
    diff_cmd.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes")
    diff_cmd.add_argument("--stack", default="prod",
                          help="also compare the Pulumi program's resources for this stack (default: prod)")
    diff_cmd.add_argument("--no-pulumi", action="store_true",
                          help="compare the compiled mesh only (faster: no mock-engine runs)")
    diff_cmd.set_defaults(run=_diff)

    schema_cmd = commands.add_parser("schema", help="print the JSON Schema of a manifest file")
    schema_cmd.add_argument("kind", nargs="?", default="service",
                            choices=("service", "fleet", "locations", "bundle"),
                            help="which file (default: service)")
    schema_cmd.set_defaults(run=_schema)
    return parser


def _add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_STACK, metavar="PATH",
                        help=f"manifest folder or single file (default: {DEFAULT_STACK})")


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        print(diagnostic.render(), file=sys.stderr)


def _load(path: Path) -> Loaded:
    loaded = load(path)
    _print_diagnostics(loaded.warnings)
    return loaded


def _validate(args: argparse.Namespace) -> int:
    world = _load(args.path).world
    print(f"{args.path}: ok — {len(world.clusters)} clusters, {len(world.services)} services, "
          f"{len(world.calls)} calls")
    return 0


def _render(args: argparse.Namespace) -> int:
    world = _load(args.path).world
    compiled = compile_fleet(world, CompileOptions(revision=args.revision))
    problems = verify(world, compiled)
    if problems:  # a compiler bug, not a user mistake: refuse to write what would misbehave
        for problem in problems:
            print(f"internal error: {problem}", file=sys.stderr)
        print("fleet-mesh produced output that fails its own checks; nothing was written. "
              "Please report this with the manifest.", file=sys.stderr)
        return 1
    for address in render.unresolved_addresses(compiled):
        print(f"warning: no east-west address pinned; wrote placeholder {address} "
              "(the Pulumi program reserves the real one)", file=sys.stderr)
    files = render.write(args.out, compiled)
    total = sum(len(objects) for objects in compiled.values())
    print(f"wrote {total} objects in {files} files for {len(compiled)} clusters to {args.out}")
    return 0


def _graph(args: argparse.Namespace) -> int:
    world = _load(args.path).world
    def svg(world: World) -> str:
        return graph.to_svg(graph.as_dot(world))

    render_as = {"json": graph.as_json, "mermaid": graph.as_mermaid, "dot": graph.as_dot, "svg": svg}
    try:
        sys.stdout.write(render_as[args.format](world))
    except graph.GraphvizMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _preview(args: argparse.Namespace) -> int:
    import pulumi

    from mesh import preview

    try:
        result = preview.run(args.project_dir, args.stack, progress=sys.stderr.isatty())
    except preview.PreviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except pulumi.RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("nothing was previewed.", file=sys.stderr)
        return 1
    print(f"Previewing stack {args.stack} with Pulumi's mock engine (no cloud contacted; "
          f"{preview.COMPUTED} = known only after `pulumi up`)\n")
    if not args.no_tree:
        print(preview.tree(result) + "\n")
    print(preview.summary(result))
    if args.snapshot:
        args.snapshot.parent.mkdir(parents=True, exist_ok=True)
        args.snapshot.write_text(preview.snapshot(result))
        print(f"\nwrote {args.snapshot}")
    if args.no_policy:
        return 0
    from mesh import policy

    violations = policy.check(result.registrations)  # what `pulumi preview --policy-pack policy` would report
    if not violations:
        print(f"\npolicy pack: {len(policy.RULES)} rules, no violations")
        return 0
    print(policy.format_violations(violations), file=sys.stderr)
    return 1 if any(v.mandatory for v in violations) else 0


def _diff(args: argparse.Namespace) -> int:
    from mesh import diff, diff_format

    repo = Path(".")
    try:
        base = args.base or diff.default_base(repo)
        result = diff.diff_sides(base, args.head, repo, None if args.no_pulumi else args.stack)
    except (diff.DiffError, pulumi_run_error()) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format in ("dot", "svg") and result.worlds:
        source = graph.diff_dot(*result.worlds)
        try:
            sys.stdout.write(source if args.format == "dot" else graph.to_svg(source))
        except graph.GraphvizMissing as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elif args.format == "markdown":
        sys.stdout.write(diff_format.markdown(result))
    elif args.format == "json":
        sys.stdout.write(diff_format.as_json(result))
    else:
        sys.stdout.write(diff_format.text(result, colour=sys.stdout.isatty()))
    return 1 if args.exit_code and result.changed else 0


def pulumi_run_error() -> type[Exception]:
    """pulumi.RunError, imported only when a command runs the Pulumi program."""
    import pulumi

    return pulumi.RunError


def _schema(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter

    models: dict[str, TypeAdapter[Any]] = {
        "service": TypeAdapter(manifest_schema.Service),
        "fleet": TypeAdapter(manifest_schema.Fleet),
        "locations": TypeAdapter(manifest_schema.LocationsFile),
        "bundle": TypeAdapter(manifest_schema.Bundle),
    }
    print(json.dumps(models[args.kind].json_schema(by_alias=True), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
