"""Which actions of a process run in a deployment, and which machines each one reaches: target roles,
environment and channel scoping, tenant participation (tenant ids and tenant tags), machine health and
specific/excluded machines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from simulator.store import Doc, Store, TenantKey
from simulator.tenant_tags import reaches_tenant

TARGET_ROLES = "Octopus.Action.TargetRoles"
MANUAL_TYPE = "Octopus.Manual"
RESPONSIBLE_TEAMS = "Octopus.Action.Manual.ResponsibleTeamIds"
INSTRUCTIONS = "Octopus.Action.Manual.Instructions"
AVAILABLE_HEALTH = ("Healthy", "HasWarnings", "Unknown")


@dataclass
class PlannedAction:
    action_id: str
    action_name: str
    action_number: str
    step_name: str
    action_type: str
    roles: list[str]
    is_disabled: bool
    is_required: bool
    start_with_previous: bool
    responsible_team_ids: list[str] = field(default_factory=list)
    instructions: str | None = None
    machine_ids: list[str] = field(default_factory=list)
    unavailable_ids: list[str] = field(default_factory=list)
    excluded_ids: list[str] = field(default_factory=list)

    @property
    def is_manual(self) -> bool:
        return self.action_type == MANUAL_TYPE

    @property
    def targets_machines(self) -> bool:
        return bool(self.roles)


def split_list(value: object) -> list[str]:
    if not isinstance(value, str):
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def machine_participates(machine: Doc, tenant: Doc | None) -> bool:
    """A tenanted deployment reaches machines linked to that tenant, by id or by tenant tags; an
    untenanted one reaches machines that are Untenanted or TenantedOrUntenanted."""
    mode = machine.get("TenantedDeploymentParticipation", "Untenanted")
    if tenant is None:
        return mode in ("Untenanted", "TenantedOrUntenanted")
    return mode in ("Tenanted", "TenantedOrUntenanted") and reaches_tenant(machine, tenant)


def action_applies(action: Doc, environment_id: str, channel_id: str) -> bool:
    if action.get("Environments") and environment_id not in action["Environments"]:
        return False
    if environment_id in (action.get("ExcludedEnvironments") or []):
        return False
    return not (action.get("Channels") and channel_id not in action["Channels"])


def is_required(action: Doc) -> bool:
    """Assigning responsible teams to a manual intervention makes it required (Octopus docs)."""
    properties = action.get("Properties") or {}
    return bool(action.get("IsRequired")) or bool(
        action.get("ActionType") == MANUAL_TYPE and split_list(properties.get(RESPONSIBLE_TEAMS))
    )


def plan_actions(
    store: Store,
    process: Doc,
    *,
    environment_id: str,
    channel_id: str,
    tenant_id: TenantKey,
    specific_machine_ids: Iterable[str] = (),
    excluded_machine_ids: Iterable[str] = (),
    include_disabled: bool = False,
) -> list[PlannedAction]:
    """The actions that apply to this environment, channel and tenant, with the machines each reaches."""
    specific = set(specific_machine_ids)
    excluded = set(excluded_machine_ids)
    tenant = store.tenants[tenant_id] if tenant_id is not None else None
    candidates = [
        m
        for m in store.machines.values()
        if m["SpaceId"] == process["SpaceId"]
        and environment_id in m["EnvironmentIds"]
        and not m["IsDisabled"]
        and machine_participates(m, tenant)
    ]
    planned: list[PlannedAction] = []
    for step_number, step in enumerate(process["Steps"], start=1):
        roles = split_list((step.get("Properties") or {}).get(TARGET_ROLES))
        actions = step.get("Actions") or []
        for action_number, action in enumerate(actions, start=1):
            if action.get("IsDisabled") and not include_disabled:
                continue
            if not action_applies(action, environment_id, channel_id):
                continue
            properties = action.get("Properties") or {}
            item = PlannedAction(
                action_id=action["Id"],
                action_name=action["Name"],
                action_number=str(step_number) if len(actions) == 1 else f"{step_number}.{action_number}",
                step_name=step["Name"],
                action_type=action.get("ActionType", "Octopus.Script"),
                roles=roles,
                is_disabled=bool(action.get("IsDisabled")),
                is_required=is_required(action),
                start_with_previous=step.get("StartTrigger") == "StartWithPrevious" and action_number == 1,
                responsible_team_ids=split_list(properties.get(RESPONSIBLE_TEAMS)),
                instructions=properties.get(INSTRUCTIONS),
            )
            if roles:
                for machine in candidates:
                    if not set(roles).intersection(machine["Roles"]):
                        continue
                    machine_id = machine["Id"]
                    if machine_id in excluded or (specific and machine_id not in specific):
                        item.excluded_ids.append(machine_id)
                    elif machine["HealthStatus"] in AVAILABLE_HEALTH:
                        item.machine_ids.append(machine_id)
                    else:
                        item.unavailable_ids.append(machine_id)
            planned.append(item)
    return planned


def reference(store: Store, machine_id: str) -> Doc:
    return {"Id": machine_id, "Name": store.machines[machine_id]["Name"]}


def preview_step(store: Store, action: PlannedAction) -> Doc:
    """One StepsToExecute item (DeploymentTemplateStep)."""
    machines = [store.machines[m] for m in action.machine_ids]
    return {
        "ActionId": action.action_id,
        "ActionName": action.action_name,
        "ActionNumber": action.action_number,
        "Roles": action.roles,
        "MachineNames": [m["Name"] for m in machines],
        "Machines": [
            {
                "Id": m["Id"],
                "Name": m["Name"],
                "HealthStatus": m["HealthStatus"],
                "HasLatestCalamari": m["HasLatestCalamari"],
            }
            for m in machines
        ],
        "CanBeSkipped": not action.is_required,
        "IsDisabled": action.is_disabled,
        "HasNoApplicableMachines": action.targets_machines and not action.machine_ids,
        "UnavailableMachines": [reference(store, m) for m in action.unavailable_ids],
        "ExcludedMachines": [reference(store, m) for m in action.excluded_ids],
    }
