"""Writing a Diff for people: terminal text, a Markdown PR comment (bounded), or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from mesh.diff import Diff, ObjectChange

SIGN = {"added": "+", "removed": "-", "changed": "~"}
COLOUR = {"added": "\033[32m", "removed": "\033[31m", "changed": "\033[33m"}
RESET, BOLD, RED = "\033[0m", "\033[1m", "\033[31m"


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def _field_lines(change: ObjectChange) -> list[str]:
    lines = []
    for f in change.fields:
        if f.members:
            lines += [f"{f.path}: + {_value(v)}" for v in f.after] + [f"{f.path}: - {_value(v)}" for v in f.before]
        else:
            lines.append(f"{f.path}: {_value(f.before)} → {_value(f.after)}")
    return lines


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
        for change in diff.resources:
            line = f"  {SIGN[change.action]} {change.type} {change.name}"
            lines.append(paint(RED if change.destructive else COLOUR[change.action], line))
            lines += [f"      {path}" for path in change.fields]
    lines += ["", paint(BOLD, "Blast radius")]
    radius = diff.blast_radius()
    lines += [f"  {cluster}: +{c['added']} ~{c['changed']} -{c['removed']}" for cluster, c in radius.items()]
    if not radius:
        lines.append("  no mesh object changes")
    for cluster in radius:
        lines += ["", paint(BOLD, cluster)]
        for change in (c for c in diff.objects if c.cluster == cluster):
            lines.append(paint(COLOUR[change.action], f"  {SIGN[change.action]} {change.label}"))
            lines += [f"      {line}" for line in _field_lines(change)]
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
    if diff.resources:
        head += ["", "<details><summary>Pulumi resources outside the mesh objects</summary>\n", "```diff"]
        for change in diff.resources:
            head.append(f"{SIGN[change.action]} {change.type} {change.name}")
            head += [f"{SIGN[change.action]}     {path}" for path in change.fields]
        head += ["```", "</details>"]
    out = "\n".join(head) + "\n"
    left_out = 0
    for cluster in radius:
        body = [f"\n<details><summary><code>{cluster}</code></summary>\n", "```diff"]
        for change in (c for c in diff.objects if c.cluster == cluster):
            body.append(f"{SIGN[change.action]} {change.label}")
            body += [f"{SIGN[change.action]}     {line}" for line in _field_lines(change)]
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
        "objects": [asdict(c) for c in diff.objects],
        "resources": [asdict(c) for c in diff.resources],
    }, indent=2, ensure_ascii=False) + "\n"
