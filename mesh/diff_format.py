"""Writing a Diff for people: terminal text, a Markdown PR comment (bounded), or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from mesh.diff import Diff, FieldChange, show

SIGN = {"added": "+", "removed": "-", "changed": "~", "replaced": "±"}
COLOUR = {"added": "\033[32m", "removed": "\033[31m", "changed": "\033[33m", "replaced": "\033[33m"}
RESET, BOLD, RED = "\033[0m", "\033[1m", "\033[31m"


# Shown first in a list member, so a cut-off endpoint still says which one it was.
IDENTITY_FIRST = ("name", "address", "network", "number", "match", "port")


def _member(value: Any) -> str:
    if isinstance(value, dict):
        ordered = {k: value[k] for k in IDENTITY_FIRST if k in value}
        ordered.update((k, value[k]) for k in sorted(value) if k not in ordered)
        text = json.dumps(ordered, ensure_ascii=False)
        return text if len(text) <= 120 else text[:117] + "..."
    return json.dumps(value, sort_keys=True, ensure_ascii=False)[:120]


def _field_lines(fields: tuple[FieldChange, ...]) -> list[str]:
    lines = []
    for f in fields:
        if f.members:
            lines += [f"{f.path}: + {_member(v)}" for v in f.after] + [f"{f.path}: - {_member(v)}" for v in f.before]
        elif f.before is None:
            lines.append(f"{f.path}: + {show(f.after)}")
        elif f.after is None:
            lines.append(f"{f.path}: - {show(f.before)}")
        else:
            lines.append(f"{f.path}: {show(f.before)} → {show(f.after)}")
    return lines


def _resource_lines(diff: Diff) -> list[tuple[str, str, list[str], bool]]:
    """(action, heading, field lines, destructive) per group of Pulumi resources changed the same way."""
    from mesh import diff_infra

    out = []
    for group in diff_infra.groups(diff.resources):
        first = group[0]
        names = ", ".join(f"{c.replaces} → {c.name}" if c.replaces else c.name for c in group)
        heading = f"{first.type} {names}" + (f" ({len(group)})" if len(group) > 1 else "")
        lines = _field_lines(first.changes) if first.changes else list(first.fields)
        out.append((first.action, heading, lines, any(c.destructive for c in group)))
    return out


def text(diff: Diff, colour: bool = False) -> str:
    def paint(code: str, line: str) -> str:
        return f"{code}{line}{RESET}" if colour else line

    if not diff.changed:
        return "No changes.\n"
    lines = [paint(BOLD, "What changes")]
    lines += [paint(RED, f"  ! {line}") for line in diff.destructive]
    lines += [f"  - {line}" for line in diff.intent if line not in diff.destructive]
    if diff.resources:
        lines += ["", paint(BOLD, "Pulumi resources outside the mesh objects")]
        for action, heading, fields, destructive in _resource_lines(diff):
            lines.append(paint(RED if destructive else COLOUR[action], f"  {SIGN[action]} {heading}"))
            lines += [f"      {line}" for line in fields]
    if diff.sizes:
        lines += ["", paint(BOLD, "Size (estimates, mesh size)")] + [f"  {line}" for line in diff.sizes]
    lines += ["", paint(BOLD, "Blast radius")]
    radius = diff.blast_radius()
    lines += [f"  {cluster}: +{c['added']} ~{c['changed']} -{c['removed']}" for cluster, c in radius.items()]
    if not radius:
        lines.append("  no mesh object changes")
    for cluster in radius:
        lines += ["", paint(BOLD, cluster)]
        for change in (c for c in diff.objects if c.cluster == cluster):
            lines.append(paint(COLOUR[change.action], f"  {SIGN[change.action]} {change.label}"))
            lines += [f"      {line}" for line in _field_lines(change.fields)]
    return "\n".join(lines) + "\n"


def markdown(diff: Diff, limit: int = 60_000) -> str:
    """A PR comment: intent first, then one collapsible section per cluster; never over `limit`
    characters (GitHub rejects comments over 65,536), with a note saying what was left out."""
    if not diff.changed:
        return "### fleet-mesh: no changes\n\nThis change compiles to the same configuration in every cluster.\n"
    head = ["### fleet-mesh: what this change does", ""]
    head += [f"- :warning: **{line}**" for line in diff.destructive]
    head += [f"- {line}" for line in diff.intent if line not in diff.destructive]
    radius = diff.blast_radius()
    head += ["", "| cluster | added | changed | removed |", "|---|---:|---:|---:|"]
    head += [f"| `{c}` | {n['added']} | {n['changed']} | {n['removed']} |" for c, n in radius.items()]
    if diff.sizes:
        head += ["", "<details><summary>Size (estimates)</summary>\n"] + [f"- {line}" for line in diff.sizes]
        head += ["", "</details>"]
    if diff.resources:
        head += ["", "<details><summary>Pulumi resources outside the mesh objects</summary>\n", "```diff"]
        groups = _resource_lines(diff)
        budget = limit // 2 - sum(len(line) + 1 for line in head)  # the cluster sections get the rest
        for shown, (action, heading, fields, _) in enumerate(groups):
            block = [f"{SIGN[action]} {heading}"] + [f"{SIGN[action]}     {line}" for line in fields]
            budget -= sum(len(line) + 1 for line in block)
            if budget < 0:
                head.append(f"# … {len(groups) - shown} more resource group(s): run `mesh diff` locally")
                break
            head += block
        head += ["```", "</details>"]
    out = "\n".join(head) + "\n"
    left_out = 0
    for cluster in radius:
        body = [f"\n<details><summary><code>{cluster}</code></summary>\n", "```diff"]
        for change in (c for c in diff.objects if c.cluster == cluster):
            body.append(f"{SIGN[change.action]} {change.label}")
            body += [f"{SIGN[change.action]}     {line}" for line in _field_lines(change.fields)]
        section = "\n".join(body + ["```", "</details>\n"])
        if len(out) + len(section) > limit - 200:
            left_out += 1
            continue
        out += section
    if left_out:
        out += f"\n_{left_out} cluster section(s) left out to stay under GitHub's comment size; run " \
               "`mesh diff` locally for everything._\n"
    return out


def as_json(diff: Diff) -> str:
    return json.dumps({
        "changed": diff.changed,
        "destructive": diff.destructive,
        "intent": diff.intent,
        "blastRadius": diff.blast_radius(),
        "sizes": diff.sizes,
        "objects": [asdict(c) for c in diff.objects],
        "resources": [asdict(c) for c in diff.resources],
    }, indent=2, ensure_ascii=False) + "\n"
