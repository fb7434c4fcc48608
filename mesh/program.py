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
from mesh.infra.stack_config import CONFIG_NAMESPACE, SECRET_KEYS, StackConfigError, decode_values

__all__ = ["Plan", "PlanError", "prepare", "read_config", "run"]

def read_config() -> dict[str, Any]:
    """Every `mesh:` key the stack sets (the secret rootCaKey apart), as `StackConfig` reads them.

    All keys, not only known ones, so that a misspelt key is an error rather than ignored; a value
    that is not the JSON it should be is passed on as a string, for validation to name it."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    values: dict[str, Any] = {}
    for full, value in raw.items():
        namespace, _, key = str(full).partition(":")
        key = key.removeprefix("config:")  # the older `mesh:config:key` form
        if namespace == CONFIG_NAMESPACE and key not in SECRET_KEYS:
            values[key] = value
    return decode_values(values)


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
