"""`mesh`: validate, render and draw a fleet-mesh manifest.

Exit status: 0 on success, 1 when the manifest has errors or output cannot be written, 2 on a
command-line mistake (`mesh diff --exit-code`: 1 for changes, 2 for errors). User mistakes and the
environment (unwritable folders, a closed pipe, Ctrl-C) are reported as one-line messages, never as
tracebacks; a crash that is a bug says so in one line, and `--debug` shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
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
        return _run(args)
    except KeyboardInterrupt:
        print("\nmesh: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`mesh ... | head`): nothing more to say
        _silence_stdout()
        return 141
    except Exception as exc:
        if args.debug:
            raise
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        print(f"mesh: internal error (a bug in fleet-mesh, not a mistake in your input): {type(exc).__name__}: "
              f"{detail}; run again with --debug for the traceback, and please report it", file=sys.stderr)
        return _failure(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
    except ManifestError as exc:
        _print_diagnostics(exc.diagnostics)
        print(f"{len(exc.diagnostics)} error(s); nothing was written.", file=sys.stderr)
        return _failure(args)
    except render.RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _failure(args)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{(exc.strerror or str(exc)).lower()}", file=sys.stderr)
        return _failure(args)


def _failure(args: argparse.Namespace) -> int:
    """The exit status of an error: 1, or 2 where 1 means "changes" (`mesh diff --exit-code`)."""
    return 2 if getattr(args, "exit_code", False) else 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush does not fail on the closed pipe too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


_REVISION = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _revision(value: str) -> str:
    if not _REVISION.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an Istio revision: lower-case letters, digits and '-', starting and ending with a "
            "letter or digit, at most 63 characters (e.g. 1-31-1)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesh",
        description="Compile a fleet-mesh manifest (fleet, services, locations) into every "
        "cluster's Istio configuration.",
    )
    parser.add_argument("--version", action="version", version=f"fleet-mesh {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr (it shows only on a terminal)")
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
    render_cmd.add_argument("--revision", default=None, type=_revision,
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
    diff_cmd.add_argument("--exit-code", action="store_true",
                          help="exit 1 when there are changes, 2 on errors (0: no changes)")
    diff_cmd.add_argument("--stack", default="prod",
                          help="also compare the Pulumi program's resources for this stack (default: prod)")
    diff_cmd.add_argument("--no-pulumi", action="store_true",
                          help="compare the compiled mesh only (faster: no mock-engine runs)")
    diff_cmd.set_defaults(run=_diff)

    schema_cmd = commands.add_parser("schema", help="print the JSON Schema of a manifest file or the stack outputs")
    schema_cmd.add_argument("kind", nargs="?", default="service",
                            choices=("service", "fleet", "locations", "bundle", "outputs"),
                            help="which file (default: service); outputs: the stack outputs other teams read")
    schema_cmd.set_defaults(run=_schema)

    size_cmd = commands.add_parser(
        "size", help="what each istiod and each workload's proxy will hold, before apply (estimates)")
    _add_path(size_cmd)
    size_cmd.add_argument("--format", choices=("text", "json"), default="text")
    size_cmd.add_argument("--top", type=int, default=10, help="how many of the largest proxies to list")
    size_cmd.set_defaults(run=_size)

    shards_cmd = commands.add_parser(
        "shards", help="propose stacks that each stay under a resource limit; optionally write their stack files")
    _add_path(shards_cmd)
    shards_cmd.add_argument("--by", choices=("cluster", "region", "tier"), default="region",
                            help="group clusters by (default: region)")
    shards_cmd.add_argument("--limit", type=int, default=None, help="resources per stack (default: 3,000)")
    shards_cmd.add_argument("--write", type=Path, metavar="DIR",
                            help="write Pulumi.<prefix>-<shard>.yaml files there, from --stack's config; clusters "
                                 "in the files already there keep their stack, and splits their parts")
    shards_cmd.add_argument("--stack", default="prod", help="stack whose config the shards start from")
    shards_cmd.add_argument("--org", default="organization", help="Pulumi organization of the stacks")
    shards_cmd.set_defaults(run=_shards)
    for command in commands.choices.values():  # `mesh validate --debug` works as well as `mesh --debug validate`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
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
    try:
        files = render.write(args.out, compiled)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        print(f"error: cannot write {args.out}: {_write_failure(args.out, exc)}; nothing was written.",
              file=sys.stderr)
        return 1
    total = sum(len(objects) for objects in compiled.values())
    print(f"wrote {total} objects in {files} files for {len(compiled)} clusters to {args.out}")
    return 0


def _write_failure(out: Path, exc: OSError) -> str:
    """Why `out` cannot be written, in words: a file in the way, or the system's reason."""
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and existing != out and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    return (exc.strerror or str(exc)).lower()


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
        result = preview.run(args.project_dir, args.stack, progress=sys.stderr.isatty() and not args.quiet)
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
        result = diff.diff_sides(base, args.head, repo, None if args.no_pulumi else args.stack,
                                 progress=_progress(args))
    except (diff.DiffError, pulumi_run_error()) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _failure(args)
    if args.format in ("dot", "svg") and result.worlds:
        source = graph.diff_dot(*result.worlds)
        try:
            sys.stdout.write(source if args.format == "dot" else graph.to_svg(source))
        except graph.GraphvizMissing as exc:
            print(f"error: {exc}", file=sys.stderr)
            return _failure(args)
    elif args.format == "markdown":
        sys.stdout.write(diff_format.markdown(result))
    elif args.format == "json":
        sys.stdout.write(diff_format.as_json(result))
    else:
        sys.stdout.write(diff_format.text(result, colour=sys.stdout.isatty()))
    return 1 if args.exit_code and result.changed else 0


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    """Stages of long work on stderr, only for a person watching (a terminal, not --quiet)."""
    if args.quiet or not sys.stderr.isatty():
        return lambda stage: None
    return lambda stage: print(f"mesh: {stage}…", file=sys.stderr, flush=True)


def pulumi_run_error() -> type[Exception]:
    """pulumi.RunError, imported only when a command runs the Pulumi program."""
    import pulumi

    return pulumi.RunError


def _schema(args: argparse.Namespace) -> int:
    if args.kind == "outputs":
        from mesh.outputs import json_schema

        print(json.dumps(json_schema(), indent=2, sort_keys=True))
        return 0
    models: dict[str, Any] = {
        "service": manifest_schema.Service,
        "fleet": manifest_schema.Fleet,
        "locations": manifest_schema.LocationsFile,
        "bundle": manifest_schema.Bundle,
    }
    print(json.dumps(manifest_schema.json_schema(models[args.kind]), indent=2, sort_keys=True))
    return 0


def _size(args: argparse.Namespace) -> int:
    from mesh import size

    sizes = size.measure(compile_fleet(_load(args.path).world))
    if args.format == "json":
        print(json.dumps(size.as_json(sizes), indent=2, sort_keys=True))
    else:
        print(size.report(sizes, top=args.top))
    return 0


def _shards(args: argparse.Namespace) -> int:
    from mesh import reshard, shards
    from mesh.infra.plan import STACK_RESOURCE_LIMIT
    from mesh.infra.stack_config import read_stack_file

    limit = args.limit or STACK_RESOURCE_LIMIT
    world = _load(args.path).world
    compiled = compile_fleet(world)
    # Stack files already in the folder are kept as they are where possible: a re-run moves little.
    before = {path.name.removeprefix("Pulumi.").removesuffix(".yaml"): read_stack_file(path)
              for path in sorted(args.write.glob(f"Pulumi.{args.stack}-*.yaml"))} if args.write else {}
    layout = reshard.existing_layout(before, args.stack)
    proposal = shards.propose(world, compiled, args.by, limit, keep=layout)
    print(shards.report(proposal, limit, args.by, kept=len(layout.managing())))
    if args.write and not _write_shards(args, proposal, compiled, before, layout):
        return 1
    return 1 if any(s.over(limit) for s in proposal) else 0


def _write_shards(args: argparse.Namespace, proposal: Sequence[Any], compiled: Mapping[str, Any],
                  before: Mapping[str, Any], layout: Any) -> bool:
    """The stack files, and the state moves from the ones already in the folder; False (nothing
    written) when a cluster would change stacks with its infrastructure."""
    from mesh import preview, reshard, shards

    project, config, _ = preview.read_stack_config(Path("."), args.stack)
    base = json_config(config)
    relocated = reshard.cluster_moves(layout, proposal, args.stack)
    for cluster, source, dest in relocated:
        print(f"error: {cluster} is managed by {source} and would move to {dest} with its GKE cluster and control "
              "plane; mesh shards moves only mesh objects between stacks. Choose --by/--limit that keep it where it "
              "is, or move its state by hand first", file=sys.stderr)
    if relocated:
        print("nothing was written.", file=sys.stderr)
        return False
    if "mesh:rootCaCertificate" not in base:
        print(f"note: {args.stack} sets no mesh:rootCaCertificate; every shard needs the fleet's shared root "
              "(mesh:rootCaCertificate, and mesh:rootCaKey as a secret) before it can run", file=sys.stderr)
    moved = reshard.moves(layout, proposal, compiled, args.stack)
    args.write.mkdir(parents=True, exist_ok=True)
    files = shards.stack_files(proposal, base, args.org, project, args.stack)
    for name, text in files.items():
        (args.write / name).write_text(text)
        print(f"wrote {args.write / name}")
    for stale in sorted({f"Pulumi.{stack}.yaml" for stack in before} - set(files)):
        print(f"note: {args.write / stale} is no longer proposed: once its objects have moved (state-moves.sh), "
              "`pulumi destroy` and remove that stack, and delete its file", file=sys.stderr)
    for move in moved:
        print(f"{len(move.names):,} of {move.cluster}'s mesh objects move from {move.source} to {move.dest}",
              file=sys.stderr)
    if moved:
        script = args.write / "state-moves.sh"
        script.write_text(reshard.script(moved, project, set(before)))
        print(f"wrote {script}: move their state with it before `pulumi up` (README: a cluster too big for one "
              "stack)", file=sys.stderr)
    return True


def json_config(config: dict[str, str]) -> dict[str, Any]:
    """Pulumi's flat config (structured values as JSON strings) back into YAML-shaped values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        try:
            out[key] = json.loads(value) if value[:1] in "[{" else value
        except ValueError:
            out[key] = value
    return out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
