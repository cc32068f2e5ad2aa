"""The deployment report as data: per orchestration, a row per deployment (`workers.deployment_report` builds
it; `service.report_formats` renders it)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Source = Literal["conductor records", "octopus"]
CONDUCTOR = "conductor"


class RelayedApproval(BaseModel):
    step: str
    result: str
    approver: str = Field(description="the person whose answer was relayed: display name (username)")
    covered_by: str = Field(description="where that person answered")


class RefusedApproval(BaseModel):
    step: str
    reason: str


class DeploymentRow(BaseModel):
    deployment_id: str
    task_id: str | None
    project: str
    release: str
    environment: str
    tenant: str | None
    machines: list[str] = Field(description="the names of the machines it was limited to (a redeploy), else none")
    deployed_by: str = Field(description=f"'{CONDUCTOR}', or the person Octopus names as DeployedBy")
    by_conductor: bool
    plan: str | None = Field(description="the conductor plan it belonged to (or is the promotion's parent of)")
    outcome: str = Field(description="the task's state: Success, Failed, Canceled, TimedOut, Executing, ...")
    reason: str | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    approvals_relayed: list[RelayedApproval]
    approvals_refused: list[RefusedApproval]
    source: Source = Field(description="where the row came from: the conductor's records, or Octopus alone")


class OrchestrationDeployments(BaseModel):
    orchestration: str
    deployments: list[DeploymentRow]


class DeploymentReport(BaseModel):
    since: datetime
    until: datetime
    complete: bool = Field(description="false when Octopus could not be read: people's deployments may be missing")
    orchestrations: list[OrchestrationDeployments]
    notes: list[str]
