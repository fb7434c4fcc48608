"""Projects: the Google APIs each project needs, enabled before anything uses them, and its number.

Every project the stack touches gets its APIs enabled (`gcp.projects.Service`), never disabled on
destroy: other things in a shared project use them too, and disabling an API deletes what it serves.
Service agents are named from the project *number*, which only Resource Manager knows; it is read
with `gcp.organizations.get_project` at preview time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pulumi
import pulumi_gcp as gcp

from mesh.infra.apis import api_of, service_resource_name


class ProjectApis(pulumi.ComponentResource):
    """The enabled APIs of every project of this stack, and a way to depend on them."""

    def __init__(self, name: str, apis: Mapping[str, Iterable[str]], opts: pulumi.ResourceOptions | None = None):
        super().__init__("fleet-mesh:gcp:ProjectApis", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.services: dict[tuple[str, str], gcp.projects.Service] = {}
        self.numbers: dict[str, pulumi.Output[str]] = {}
        for project in sorted(apis):
            for api in sorted(set(apis[project])):
                self.services[(project, api)] = gcp.projects.Service(
                    service_resource_name(project, api), project=project, service=api,
                    # Shared projects use these APIs for other things; disabling one deletes what it serves.
                    disable_on_destroy=False, disable_dependent_services=False, opts=child)
            self.numbers[project] = gcp.organizations.get_project_output(project_id=project).apply(
                lambda result: str(result.number))
        self.register_outputs({})

    def needed_by(self, resource_type: str, project: str) -> list[pulumi.Resource]:
        """What a resource of this type in this project must wait for (its API), or nothing."""
        api = api_of(resource_type)
        if api is None:
            return []
        if (project, api) not in self.services:
            raise KeyError(f"API {api} is not enabled in {project}: add it to mesh/infra/apis.py")
        return [self.services[(project, api)]]

    def gke_agent(self, project: str) -> pulumi.Output[str]:
        """The project's GKE service agent, which creates nodes and load balancers on its behalf."""
        return self.numbers[project].apply(
            lambda number: f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com")

    def cloud_services_agent(self, project: str) -> pulumi.Output[str]:
        """The project's Google APIs service agent, which runs managed instance groups (node pools)."""
        return self.numbers[project].apply(lambda number: f"serviceAccount:{number}@cloudservices.gserviceaccount.com")
