"""fleet-mesh: compile a services manifest into every cluster's Istio configuration."""

__version__ = "0.1.0"
