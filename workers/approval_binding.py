"""What covers the approvals of a deployment the conductor makes: a binding, written before the deployment is.

Every deployment the conductor creates carries a marker in its Comments, `[conductor <name>]`. Before the
POST, the conductor records under that name what the deployment is for:

- `parent`: a component deployment ordered by a parent (orchestration) deployment, in a promotion. That
  parent deployment's answers count for it, while the parent runs.
- `redeploy`: a component's current release redeployed to new targets. An earlier approval of this very
  release, environment and tenant, at the same step, counts for it (rules `redeploy_approvals: reuse`).
- `unattended`: a component deployment of a promotion nobody approved as a whole (on demand, on a
  schedule): nothing counts for it, its approvals are the people's.

The approval relay trusts a binding only for a deployment created by the service account itself, whose
release, environment and tenant are the ones recorded: a person can copy a marker into a comment, but
cannot create a deployment as the service account. A deployment with no binding was made by someone else,
and its approvals are left to people unless the rules bind them explicitly.

A binding is kept while the plan that made its deployment runs, and for the retention (`workers.retention`)
once that plan has ended.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import redis
from pydantic import BaseModel, Field

from workers.events import utcnow
from workers.retention import DEFAULT_RETENTION, Retention

_MARKER = re.compile(r"\[conductor ([A-Za-z0-9_./:-]+)\]")

BindingKind = Literal["parent", "redeploy", "unattended"]


def marker(name: str) -> str:
    """The text a conductor deployment carries in its Comments, e.g. `[conductor plan-3/1]`."""
    if _MARKER.fullmatch(f"[conductor {name}]") is None:
        raise ValueError(f"not a marker name: {name!r}")
    return f"[conductor {name}]"


def marker_name(comments: str | None) -> str | None:
    """The marker name in a deployment's Comments, if it has one."""
    found = _MARKER.search(comments or "")
    return found.group(1) if found else None


class ApprovalBinding(BaseModel):
    kind: BindingKind
    marker: str = Field(description="the marker name the deployment carries")
    release_id: str
    environment_id: str
    tenant_id: str | None
    parent_deployment_id: str | None = Field(None, description="for `parent`: the deployment that ordered it")
    parent_space_id: str | None = Field(
        None, description="for `parent`: that deployment's space, which may not be the component's (rules `space:`)"
    )
    plan_id: str | None = Field(None, description="the conductor plan that made the deployment")
    recorded_at: datetime = Field(default_factory=utcnow)

    def covers(self, deployment: dict[str, object]) -> bool:
        """True when the deployment is the one this binding was recorded for."""
        return (
            deployment.get("ReleaseId") == self.release_id
            and deployment.get("EnvironmentId") == self.environment_id
            and (deployment.get("TenantId") or None) == self.tenant_id
        )


class ApprovalBindings:
    def __init__(self, connection: redis.Redis, prefix: str, *, retention: Retention = DEFAULT_RETENTION) -> None:
        self._redis = connection
        self._prefix = prefix
        self._retention = retention

    def _key(self, name: str) -> str:
        return f"{self._prefix}:binding:{name}"

    def record(self, binding: ApprovalBinding) -> None:
        """Write (or rewrite, on a retry) the binding before the deployment is created."""
        self._redis.set(self._key(binding.marker), binding.model_dump_json())

    def ended(self, names: list[str]) -> None:
        """The plan that made these deployments has ended: keep their bindings for the retention only."""
        with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.expire(self._key(name), self._retention.seconds)
            pipe.execute()

    def load(self, name: str) -> ApprovalBinding | None:
        raw = self._redis.get(self._key(name))
        return None if raw is None else ApprovalBinding.model_validate_json(raw)
