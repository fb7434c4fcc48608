"""The Pulumi program: decide everything first (pure), then declare it.

`mesh.infra.plan.prepare` reads the stack configuration and the manifest, compiles the fleet and
raises one clear error before a single resource is registered; `mesh.infra.fleet.declare` then
builds the stack and exports the outputs documented in `mesh.outputs`.
"""

from __future__ import annotations

from typing import Any

import pulumi

from mesh.diagnostics import ManifestError
from mesh.infra.fleet import declare
from mesh.infra.plan import Plan, PlanError, prepare
from mesh.infra.stack_config import CONFIG_NAMESPACE, StackConfigError

__all__ = ["Plan", "PlanError", "prepare", "read_config", "run"]

LIST_KEYS = ("clusters", "masterAuthorizedNetworks", "eastWestSourceRanges", "istioRevisions",
             "ingressSourceRanges", "peerStacks", "allowedImages", "decommission")
STRING_KEYS = ("manifest", "istioVersion", "chartRepository", "releaseChannel", "rootCaCertificate")


def read_config() -> dict[str, Any]:
    config = pulumi.Config(CONFIG_NAMESPACE)
    values: dict[str, Any] = {key: config.get(key) for key in STRING_KEYS}
    values.update({key: config.get_object(key) for key in LIST_KEYS})
    return {key: value for key, value in values.items() if value is not None}


def run() -> None:
    """Entry point of `__main__.py`. User mistakes surface as one clear error, not a traceback."""
    config = pulumi.Config(CONFIG_NAMESPACE)
    root_key = config.get_secret("rootCaKey")
    try:
        plan = prepare(read_config(), has_root_key=root_key is not None)
    except ManifestError as exc:
        raise pulumi.RunError("the manifest has errors:\n" + "\n".join(d.render() for d in exc.diagnostics)) from None
    except (StackConfigError, PlanError) as exc:
        raise pulumi.RunError(str(exc)) from None
    declare(plan, root_key)
