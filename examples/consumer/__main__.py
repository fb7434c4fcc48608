"""A team's Pulumi program that consumes a fleet-mesh stack without this repository.

It reads the fleet's outputs through a `StackReference`, checks them against the published JSON
Schema (`mesh schema outputs`, vendored beside this file at the version it was written for), and
exports what it needs: the east-west address its own firewall must admit, per cluster.
"""

import json
from pathlib import Path

import jsonschema
import pulumi

SCHEMA = json.loads((Path(__file__).parent / "stack-outputs.schema.json").read_text())
SECRET_OUTPUTS = ("kubeconfigs",)  # secret outputs read as a placeholder unless asked for


def checked(outputs: dict) -> dict:
    public = {key: value for key, value in outputs.items() if key not in SECRET_OUTPUTS}
    required = [key for key in SCHEMA.get("required", []) if key not in SECRET_OUTPUTS]
    jsonschema.validate(public, {**SCHEMA, "required": required})
    if public["schemaVersion"] != SCHEMA["properties"]["schemaVersion"]["const"]:
        raise ValueError(f"fleet outputs are schemaVersion {public['schemaVersion']}; this program reads "
                         f"{SCHEMA['properties']['schemaVersion']['const']}")
    return public


fleet = pulumi.StackReference(pulumi.Config().require("fleet"))
names = ("schemaVersion", "clusters", "services", "natAddresses", "rootCaCertificate")
outputs = pulumi.Output.all(*[fleet.require_output(name) for name in names]).apply(
    lambda values: checked(dict(zip(names, values, strict=True))))
pulumi.export("eastWestAddresses", outputs.apply(
    lambda o: {name: cluster["eastWest"]["external"] for name, cluster in sorted(o["clusters"].items())}))
pulumi.export("fleetNatAddresses", outputs.apply(lambda o: o["natAddresses"]))
