"""Machine events: what Octopus writes when a deployment target is added, changed or found (un)healthy."""

from __future__ import annotations

from simulator.audit import write_event
from simulator.store import Doc, Store

HEALTH_STATUSES = ("Healthy", "HasWarnings", "Unhealthy", "Unavailable", "Unknown")
HEALTH_EVENTS = {
    "Healthy": ("MachineHealthy", "is healthy"),
    "HasWarnings": ("MachineHasWarnings", "has warnings"),
    "Unhealthy": ("MachineUnhealthy", "is unhealthy"),
    "Unavailable": ("MachineUnavailable", "is unavailable"),
}
SUMMARIES = {
    "Healthy": "Octopus was able to successfully establish a connection with this machine.",
    "HasWarnings": "The health check for this machine completed with warnings.",
    "Unhealthy": "The health check for this machine failed.",
    "Unavailable": "Octopus was unable to establish a connection with this machine.",
    "Unknown": "This machine has not been health checked yet.",
}


def machine_event(store: Store, machine: Doc, category: str, text: str, user: Doc | None = None) -> Doc:
    """Machine events name the machine first, then its environments and tenants (inferred order)."""
    return write_event(
        store,
        category=category,
        message=["Deployment target ", (machine["Name"], machine["Id"]), f" {text}"],
        related=[machine["Id"], *machine["EnvironmentIds"], *machine["TenantIds"]],
        space_id=machine["SpaceId"],
        user=user,
    )


def apply_health(store: Store, machine_id: str, status: str, user: Doc | None = None) -> bool:
    """Set a machine's health; write the matching event when it changed."""
    machine = store.machines.get(machine_id)
    if machine is None or machine["HealthStatus"] == status:
        return False
    machine["HealthStatus"] = status
    machine["StatusSummary"] = SUMMARIES[status]
    if not machine["IsDisabled"]:
        machine["Status"] = "Online" if status in ("Healthy", "HasWarnings") else "Offline"
    if status in HEALTH_EVENTS:
        category, text = HEALTH_EVENTS[status]
        machine_event(store, machine, category, text, user)
    return True
