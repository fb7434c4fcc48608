"""Entry point of the fleet-mesh policy pack (PulumiPolicy.yaml): the CLI runs it as the analyzer.

`PolicyPack(...)` starts a gRPC server and blocks, so it is built here and nowhere else; the rules
themselves are in `mesh.policy`, where tests and `mesh preview` run them in-process.
"""

import sys
from pathlib import Path

# The repository root, in case the pack runs from a virtual environment without mesh installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from mesh.policy import PACK_ENFORCEMENT, PACK_NAME, policies

PolicyPack(PACK_NAME, enforcement_level=PACK_ENFORCEMENT, policies=policies())
