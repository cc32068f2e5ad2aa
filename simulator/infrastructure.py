"""Environments, deployment targets (machines) and tenants."""

from __future__ import annotations

from simulator.audit import write_event
from simulator.errors import bad_request
from simulator.machine_health import HEALTH_STATUSES, SUMMARIES, apply_health, machine_event
from simulator.store import Doc, Store
from simulator.task_clock import TaskRun, new_task_doc, start_run
from simulator.tenant_tags import check_tags
from simulator.timeutil import iso
from simulator.validation import (
    body_object,
    one_of,
    optional_bool,
    optional_str,
    required_str,
    slugify,
    str_list,
)

PARTICIPATION = ("Untenanted", "TenantedOrUntenanted", "Tenanted")


def created_event(store: Store, kind: str, doc: Doc, user: Doc | None) -> None:
    write_event(
        store,
        category="Created",
        message=[f"{kind} ", (doc.get("Name") or doc.get("Version") or doc["Id"], doc["Id"]), " has been created"],
        related=[doc["Id"]],
        space_id=doc.get("SpaceId"),
        user=user,
    )


def create_environment(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    env_id = store.next_id("Environments")
    if not store.claim_name("Environment", space_id, name, env_id):
        raise bad_request(f"An environment with the name '{name}' already exists in this space.")
    sort_order = data.get("SortOrder")
    env: Doc = {
        "Id": env_id,
        "Name": name,
        "Slug": slugify(name),
        "Description": optional_str(data, "Description") or "",
        "SortOrder": sort_order if isinstance(sort_order, int) else store.peek_next_number("Environments") - 1,
        "UseGuidedFailure": optional_bool(data, "UseGuidedFailure", False),
        "AllowDynamicInfrastructure": optional_bool(data, "AllowDynamicInfrastructure", True),
        "ExtensionSettings": [],
        "SpaceId": space_id,
        "LastModifiedOn": iso(store.now()),
        "Links": {
            "Self": f"/api/{space_id}/environments/{env_id}",
            "Machines": f"/api/{space_id}/environments/{env_id}/machines"
            "{?skip,take,partialName,roles,isDisabled,healthStatuses,commStyles,tenantIds,tenantTags,shellNames}",
            "SinglyScopedVariableDetails": f"/api/{space_id}/environments/{env_id}/singlyScopedVariableDetails",
            "Metadata": f"/api/{space_id}/environments/{env_id}/metadata",
            "Web": f"/app#/{space_id}/infrastructure/environments/{env_id}",
        },
    }
    store.environments[env_id] = env
    created_event(store, "Environment", env, user)
    return env


def _check_environments(store: Store, space_id: str, env_ids: list[str]) -> None:
    for env_id in env_ids:
        env = store.environments.get(env_id)
        if env is None or env["SpaceId"] != space_id:
            raise bad_request(f"The environment '{env_id}' does not exist.")


def _check_tenants(store: Store, space_id: str, tenant_ids: list[str]) -> None:
    for tenant_id in tenant_ids:
        tenant = store.tenants.get(tenant_id)
        if tenant is None or tenant["SpaceId"] != space_id:
            raise bad_request(f"The tenant '{tenant_id}' does not exist.")


def _endpoint(data: Doc, machine_id: str) -> Doc:
    endpoint = data.get("Endpoint")
    endpoint = dict(endpoint) if isinstance(endpoint, dict) else {}
    endpoint.setdefault("CommunicationStyle", "TentaclePassive")
    endpoint.setdefault("Uri", None)
    endpoint.setdefault("Thumbprint", None)
    endpoint.setdefault("Id", f"endpoint-{machine_id}")
    endpoint.setdefault("Links", {})
    return endpoint


def create_machine(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    env_ids = str_list(data, "EnvironmentIds")
    roles = str_list(data, "Roles")
    tenant_ids = str_list(data, "TenantIds")
    errors = []
    if not env_ids:
        errors.append("Please select at least one environment for this deployment target.")
    if not roles:
        errors.append("Please specify at least one target role for this deployment target.")
    if errors:
        raise bad_request(*errors)
    _check_environments(store, space_id, env_ids)
    _check_tenants(store, space_id, tenant_ids)
    tenant_tags = str_list(data, "TenantTags")
    check_tags(store, space_id, tenant_tags)
    default_mode = "Tenanted" if tenant_ids or tenant_tags else "Untenanted"
    mode = one_of(data, "TenantedDeploymentParticipation", PARTICIPATION, default_mode)
    if mode == "Untenanted" and tenant_ids:
        raise bad_request("An untenanted deployment target cannot be linked to tenants.")
    machine_id = store.next_id("Machines")
    if not store.claim_name("Machine", space_id, name, machine_id):
        raise bad_request(f"A deployment target with the name '{name}' already exists in this space.")
    disabled = optional_bool(data, "IsDisabled", False)
    machine: Doc = {
        "Id": machine_id,
        "Name": name,
        "Slug": slugify(name),
        "SpaceId": space_id,
        "EnvironmentIds": env_ids,
        "Roles": roles,
        "TenantIds": tenant_ids,
        "TenantTags": tenant_tags,
        "TenantedDeploymentParticipation": mode,
        "IsDisabled": disabled,
        "HealthStatus": "Unknown",
        "Status": "Disabled" if disabled else "Unknown",
        "StatusSummary": SUMMARIES["Unknown"],
        "HasLatestCalamari": True,
        "IsInProcess": False,
        "MachinePolicyId": optional_str(data, "MachinePolicyId") or "MachinePolicies-1",
        "Endpoint": _endpoint(data, machine_id),
        "OperatingSystem": "Unknown",
        "ShellName": "Unknown",
        "ShellVersion": "Unknown",
        "Architecture": "Unknown",
        "Thumbprint": (data.get("Endpoint") or {}).get("Thumbprint")
        if isinstance(data.get("Endpoint"), dict)
        else None,
        "Uri": (data.get("Endpoint") or {}).get("Uri") if isinstance(data.get("Endpoint"), dict) else None,
        "SkipInitialHealthCheck": optional_bool(data, "SkipInitialHealthCheck", False),
        "LastModifiedOn": iso(store.now()),
        "Links": {
            "Self": f"/api/{space_id}/machines/{machine_id}",
            "Connection": f"/api/{space_id}/machines/{machine_id}/connection",
            "TasksTemplate": f"/api/{space_id}/machines/{machine_id}/tasks{{?skip,take,type}}",
            "Web": f"/app#/{space_id}/infrastructure/machines/{machine_id}",
        },
    }
    store.machines[machine_id] = machine
    machine_event(store, machine, "MachineAdded", "has been created", user)
    if not machine["SkipInitialHealthCheck"] and not disabled:
        schedule_health_check(store, space_id, [machine_id])
    return machine


def schedule_health_check(store: Store, space_id: str, machine_ids: list[str]) -> Doc:
    """A "Health" server task; when it runs, each machine takes the health the control surface set
    for it (Healthy unless told otherwise)."""
    names = ", ".join(store.machines[m]["Name"] for m in machine_ids)
    task = new_task_doc(
        store,
        space_id=space_id,
        name="Health",
        description=f"Check deployment target health: {names}",
        arguments={"MachineIds": machine_ids},
        queue_time=store.now(),
    )
    start_run(
        store,
        TaskRun(task_id=task["Id"], kind="Health", queue_until=store.now(), health_machine_ids=machine_ids),
    )
    return task


def update_machine(store: Store, machine: Doc, body: object, user: Doc | None) -> Doc:
    """PUT a machine: enabling/disabling and deployment-related changes write their events."""
    data = body_object(body)
    space_id = machine["SpaceId"]
    check_tags(store, space_id, str_list(data, "TenantTags"))
    related_changed = False
    if "Name" in data and data["Name"] != machine["Name"]:
        name = required_str(data, "Name")
        if not store.claim_name("Machine", space_id, name, machine["Id"]):
            raise bad_request(f"A deployment target with the name '{name}' already exists in this space.")
        store.release_name("Machine", space_id, machine["Name"])
        machine["Name"] = name
    for field_name in ("EnvironmentIds", "Roles", "TenantIds", "TenantTags"):
        if field_name in data:
            values = str_list(data, field_name)
            if field_name == "EnvironmentIds":
                if not values:
                    raise bad_request("Please select at least one environment for this deployment target.")
                _check_environments(store, space_id, values)
            if field_name == "Roles" and not values:
                raise bad_request("Please specify at least one target role for this deployment target.")
            if field_name == "TenantIds":
                _check_tenants(store, space_id, values)
            if values != machine[field_name]:
                machine[field_name] = values
                related_changed = True
    if "TenantedDeploymentParticipation" in data:
        mode = one_of(
            data, "TenantedDeploymentParticipation", PARTICIPATION, machine["TenantedDeploymentParticipation"]
        )
        if mode != machine["TenantedDeploymentParticipation"]:
            machine["TenantedDeploymentParticipation"] = mode
            related_changed = True
    if machine["TenantedDeploymentParticipation"] == "Untenanted" and machine["TenantIds"]:
        raise bad_request("An untenanted deployment target cannot be linked to tenants.")
    machine["LastModifiedOn"] = iso(store.now())
    if related_changed:
        machine_event(
            store,
            machine,
            "MachineDeploymentRelatedPropertyWasUpdated",
            "had a deployment-related property modified",
            user,
        )
    if "IsDisabled" in data:
        disabled = optional_bool(data, "IsDisabled", machine["IsDisabled"])
        if disabled != machine["IsDisabled"]:
            machine["IsDisabled"] = disabled
            if disabled:
                machine["Status"] = "Disabled"
                machine_event(store, machine, "MachineDisabled", "has been disabled", user)
            else:
                machine["Status"] = "Online" if machine["HealthStatus"] in ("Healthy", "HasWarnings") else "Unknown"
                machine_event(store, machine, "MachineEnabled", "has been enabled", user)
    return machine


def delete_machine(store: Store, machine: Doc, user: Doc | None) -> None:
    del store.machines[machine["Id"]]
    store.release_name("Machine", machine["SpaceId"], machine["Name"])
    # The MachineDeleted id is unconfirmed in public sources.
    machine_event(store, machine, "MachineDeleted", "has been deleted", user)


def set_health(store: Store, machine: Doc, status: str, user: Doc | None = None) -> bool:
    if status not in HEALTH_STATUSES:
        raise bad_request(f"HealthStatus must be one of: {', '.join(HEALTH_STATUSES)}.")
    store.health_targets[machine["Id"]] = status
    return apply_health(store, machine["Id"], status, user)


def _project_environments(store: Store, space_id: str, value: object) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("ProjectEnvironments must map project ids to lists of environment ids.")
    result: dict[str, list[str]] = {}
    for project_id, env_ids in value.items():
        project = store.projects.get(project_id)
        if project is None or project["SpaceId"] != space_id:
            raise bad_request(f"The project '{project_id}' does not exist.")
        if project["TenantedDeploymentMode"] == "Untenanted":
            raise bad_request(f"The project '{project['Name']}' does not allow tenanted deployments.")
        if not isinstance(env_ids, list):
            raise bad_request("ProjectEnvironments must map project ids to lists of environment ids.")
        _check_environments(store, space_id, env_ids)
        result[project_id] = list(dict.fromkeys(env_ids))
    return result


def create_tenant(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    tenant_id = store.next_id("Tenants")
    project_envs = _project_environments(store, space_id, data.get("ProjectEnvironments"))
    tenant_tags = str_list(data, "TenantTags")
    check_tags(store, space_id, tenant_tags)
    if not store.claim_name("Tenant", space_id, name, tenant_id):
        raise bad_request(f"A tenant with the name '{name}' already exists in this space.")
    tenant: Doc = {
        "Id": tenant_id,
        "Name": name,
        "Slug": slugify(name),
        "Description": optional_str(data, "Description"),
        "TenantTags": tenant_tags,
        "ProjectEnvironments": project_envs,
        "IsDisabled": optional_bool(data, "IsDisabled", False),
        "ClonedFromTenantId": None,
        "SpaceId": space_id,
        "Icon": None,
        "LastModifiedOn": iso(store.now()),
        "Links": {
            "Self": f"/api/{space_id}/tenants/{tenant_id}",
            "Variables": f"/api/{space_id}/tenants/{tenant_id}/variables",
            "Web": f"/app#/{space_id}/tenants/{tenant_id}/overview",
        },
    }
    store.tenants[tenant_id] = tenant
    created_event(store, "Tenant", tenant, user)
    return tenant


def update_tenant(store: Store, tenant: Doc, body: object) -> Doc:
    data = body_object(body)
    check_tags(store, tenant["SpaceId"], str_list(data, "TenantTags"))
    if "ProjectEnvironments" in data:
        tenant["ProjectEnvironments"] = _project_environments(store, tenant["SpaceId"], data["ProjectEnvironments"])
    if "Description" in data:
        tenant["Description"] = optional_str(data, "Description")
    if "TenantTags" in data:
        tenant["TenantTags"] = str_list(data, "TenantTags")
    if "IsDisabled" in data:
        tenant["IsDisabled"] = optional_bool(data, "IsDisabled", tenant["IsDisabled"])
    tenant["LastModifiedOn"] = iso(store.now())
    return tenant
