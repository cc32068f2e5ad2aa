"""The promotion planner's test bench: the sample simulator over HTTP, with lifecycles, channels, releases and
successful deployments made through its REST API as the administrator, and the conductor's client and
directory to choose with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.threaded_server import serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import ADMIN_API_KEY, CONDUCTOR_API_KEY, SPACE_ID, STAGING_ID
from tests.support.stack import wait_for
from workers.directory import Directory
from workers.octopus import OctopusClient
from workers.promotion_choice import ComponentChoice, choose_components
from workers.rules import Orchestration


@dataclass
class PromotionOctopus:
    admin: httpx.Client
    client: OctopusClient
    directory: Directory

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.admin.post(f"/api/{SPACE_ID}/{path}", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def lifecycle(self, name: str, *phases: tuple[str, bool]) -> str:
        """A lifecycle of one phase per (environment id, optional phase?)."""
        body = [
            {"Name": f"{name} {number}", "OptionalDeploymentTargets": [environment_id], "IsOptionalPhase": optional}
            for number, (environment_id, optional) in enumerate(phases)
        ]
        return str(self.post("lifecycles", {"Name": name, "Phases": body})["Id"])

    def channel(self, project_id: str, name: str, lifecycle_id: str) -> str:
        return str(self.post("channels", {"ProjectId": project_id, "Name": name, "LifecycleId": lifecycle_id})["Id"])

    def release(self, project_id: str, version: str, channel_id: str | None = None, **extra: Any) -> str:
        body = {"ProjectId": project_id, "Version": version, **({"ChannelId": channel_id} if channel_id else {})}
        return str(self.post("releases", {**body, **extra})["Id"])

    def release_id(self, project_id: str, version: str) -> str:
        found = self.admin.get(f"/api/{SPACE_ID}/projects/{project_id}/releases/{version}")
        assert found.status_code == 200, found.text
        return str(found.json()["Id"])

    def deployed(self, release_id: str, *environment_ids: str, tenant_id: str | None = None) -> None:
        """Deploy the release to each environment in turn, each deployment waited for until it succeeded."""
        for environment_id in environment_ids:
            body = {"ReleaseId": release_id, "EnvironmentId": environment_id, "TenantId": tenant_id}
            task_id = self.post("deployments", body)["TaskId"]

            def state(task_id: str = task_id) -> str | None:
                found = str(self.admin.get(f"/api/tasks/{task_id}").json()["State"])
                assert found in ("Queued", "Executing", "Success"), found
                return found if found == "Success" else None

            wait_for(f"{task_id} to succeed", state, timeout=30, interval=0.02)

    def choose(
        self,
        orchestration: Orchestration,
        parent_version: str,
        destination_id: str = STAGING_ID,
        tenant_id: str | None = None,
        parent_form_values: dict[str, str] | None = None,
    ) -> list[ComponentChoice]:
        return choose_components(
            client=self.client,
            directory=self.directory,
            space_id=SPACE_ID,
            orchestration=orchestration,
            parent_release_version=parent_version,
            destination_environment_id=destination_id,
            tenant_id=tenant_id,
            parent_form_values=parent_form_values,
        )


def orchestration(*components: dict[str, Any], **fields: Any) -> Orchestration:
    body = {"name": "sample-app", "parent_project": "Release Orchestration", "components": list(components)}
    return Orchestration.model_validate({**body, **fields})


@pytest.fixture
def octopus() -> Iterator[PromotionOctopus]:
    app = create_simulator(seed="sample", delivery_interval=3600, queue_delay=0, step_duration=0, health_check_delay=0)
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, headers={"X-Octopus-ApiKey": ADMIN_API_KEY}, timeout=10) as admin,
        OctopusClient(base_url=url, api_key=CONDUCTOR_API_KEY) as client,
    ):
        yield PromotionOctopus(admin=admin, client=client, directory=Directory(client))
