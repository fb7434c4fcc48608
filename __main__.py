"""The fleet-mesh Pulumi program. Everything lives in `mesh.program`; see README."""

from mesh.program import run

run()
