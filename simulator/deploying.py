"""Creating deployments (validation, the execution plan, the server task), previews and templates."""

from __future__ import annotations

from datetime import datetime, timedelta

from simulator.errors import bad_request
from simulator.lifecycle import allowed_environments, lifecycle_environments, lifecycle_id_for_release
from simulator.release_changes import changes, changes_markdown
from simulator.store import Doc, Store, TenantKey
from simulator.targeting import PlannedAction, plan_actions, preview_step
from simulator.task_clock import TaskRun, deployment_event, new_task_doc, start_run
from simulator.timeutil import iso, parse_iso
from simulator.validation import body_object, canonical_keys, optional_bool, optional_str, required_str, str_list
from simulator.variables import missing_prompts, prompt_form


def _in_space(collection: dict[str, Doc], doc_id: str, space_id: str) -> Doc | None:
    doc = collection.get(doc_id)
    return doc if doc is not None and doc["SpaceId"] == space_id else None


def check_tenant(store: Store, project: Doc, environment: Doc, tenant_id: TenantKey) -> list[str]:
    """The tenant rules of a deployment, as error messages."""
    mode = project["TenantedDeploymentMode"]
    if tenant_id is None:
        if mode == "Tenanted":
            return [f"The project '{project['Name']}' can only be deployed to tenants; please specify a TenantId."]
        return []
    tenant = _in_space(store.tenants, tenant_id, project["SpaceId"])
    if tenant is None:
        return [f"The tenant '{tenant_id}' does not exist."]
    if mode == "Untenanted":
        return [f"The project '{project['Name']}' does not allow tenanted deployments."]
    envs = tenant["ProjectEnvironments"].get(project["Id"])
    if envs is None:
        return [f"The tenant '{tenant['Name']}' is not connected to the project '{project['Name']}'."]
    if environment["Id"] not in envs:
        return [
            f"The tenant '{tenant['Name']}' is not connected to the environment '{environment['Name']}' "
            f"for the project '{project['Name']}'."
        ]
    return []


def check_lifecycle(store: Store, release: Doc, environment: Doc, tenant_id: TenantKey) -> list[str]:
    lifecycle = store.lifecycles[lifecycle_id_for_release(store, release)]
    if environment["Id"] not in lifecycle_environments(store, lifecycle):
        return [
            f"The environment '{environment['Name']}' is not part of the lifecycle '{lifecycle['Name']}' "
            f"used by release {release['Version']}."
        ]
    if environment["Id"] not in allowed_environments(store, release, tenant_id):
        return [
            f"Release {release['Version']} cannot be deployed to '{environment['Name']}' yet: it must first "
            f"complete the earlier phases of the lifecycle '{lifecycle['Name']}'."
        ]
    return []


def _date(data: Doc, name: str) -> datetime | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        return parse_iso(str(value))
    except ValueError:
        raise bad_request(f"The {name} '{value}' is not a valid date.") from None


def _stages(actions: list[PlannedAction]) -> list[list[PlannedAction]]:
    """Steps that start with the previous one run in the same stage (in parallel)."""
    stages: list[list[PlannedAction]] = []
    for action in actions:
        if action.start_with_previous and stages:
            stages[-1].append(action)
        else:
            stages.append([action])
    return stages


def _uses_guided_failure(project: Doc, environment: Doc, requested: bool) -> bool:
    mode = project["DefaultGuidedFailureMode"]
    return requested or mode == "On" or (mode == "EnvironmentDefault" and bool(environment["UseGuidedFailure"]))


DEPLOYMENT_FIELDS = (
    "ReleaseId",
    "EnvironmentId",
    "TenantId",
    "Comments",
    "FormValues",
    "SpecificMachineIds",
    "ExcludedMachineIds",
    "SkipActions",
    "QueueTime",
    "QueueTimeExpiry",
    "UseGuidedFailure",
    "ForcePackageDownload",
    "ForcePackageRedeployment",
    "Priority",
)


def create_deployment(store: Store, space_id: str, body: object, user: Doc) -> Doc:
    data = canonical_keys(body_object(body), DEPLOYMENT_FIELDS)
    release_id = required_str(data, "ReleaseId")
    environment_id = required_str(data, "EnvironmentId")
    tenant_id = optional_str(data, "TenantId")
    release = _in_space(store.releases, release_id, space_id)
    environment = _in_space(store.environments, environment_id, space_id)
    errors: list[str] = []
    if release is None:
        errors.append(f"The release '{release_id}' does not exist.")
    if environment is None:
        errors.append(f"The environment '{environment_id}' does not exist.")
    if release is None or environment is None:
        raise bad_request(*errors)
    project = store.projects[release["ProjectId"]]
    if project["IsDisabled"]:
        raise bad_request(f"The project '{project['Name']}' is disabled.")
    errors += check_tenant(store, project, environment, tenant_id)
    if errors:
        raise bad_request(*errors)
    errors += check_lifecycle(store, release, environment, tenant_id)
    specific = str_list(data, "SpecificMachineIds")
    # The Library's child-project step template misspells this field; Octopus ignores the misspelling.
    excluded = str_list(data, "ExcludedMachineIds")
    for machine_id in specific + excluded:
        machine = _in_space(store.machines, machine_id, space_id)
        if machine is None:
            errors.append(f"The deployment target '{machine_id}' does not exist.")
        elif machine_id in specific and environment_id not in machine["EnvironmentIds"]:
            errors.append(
                f"The deployment target '{machine['Name']}' ({machine_id}) is not in the environment "
                f"'{environment['Name']}'."
            )
    queue_time = _date(data, "QueueTime")
    queue_expiry = _date(data, "QueueTimeExpiry")
    if queue_time and queue_expiry and queue_expiry <= queue_time:
        errors.append("QueueTimeExpiry must be later than QueueTime.")
    process = store.processes[release["ProjectDeploymentProcessSnapshotId"]]
    planned = plan_actions(
        store,
        process,
        environment_id=environment_id,
        channel_id=release["ChannelId"],
        tenant_id=tenant_id,
        specific_machine_ids=specific,
        excluded_machine_ids=excluded,
    )
    skip = set(str_list(data, "SkipActions"))
    for action in planned:
        if action.action_id in skip and action.is_required:
            errors.append(f"The step '{action.action_name}' is required and cannot be skipped.")
    form_values = data.get("FormValues") or {}
    if not isinstance(form_values, dict):
        errors.append("FormValues must be an object.")
    else:
        errors += missing_prompts(store, project, environment_id, form_values)
    if errors:
        raise bad_request(*errors)
    # Steps that reach no machine are skipped; server-side steps (manual interventions too) always run.
    running = [a for a in planned if a.action_id not in skip and (not a.targets_machines or a.machine_ids)]
    deployed_to = list(dict.fromkeys(m for a in running for m in a.machine_ids))
    return _record(
        store,
        data,
        user,
        release=release,
        environment=environment,
        project=project,
        tenant_id=tenant_id,
        running=running,
        deployed_to=deployed_to,
        form_values=form_values,
        queue_time=queue_time,
        queue_expiry=queue_expiry,
    )


def _record(
    store: Store,
    data: Doc,
    user: Doc,
    *,
    release: Doc,
    environment: Doc,
    project: Doc,
    tenant_id: TenantKey,
    running: list[PlannedAction],
    deployed_to: list[str],
    form_values: Doc,
    queue_time: datetime | None,
    queue_expiry: datetime | None,
) -> Doc:
    space_id = project["SpaceId"]
    now = store.now()
    # What changes is measured against what the environment ran before this deployment.
    release_changes = changes(store, release, environment["Id"], tenant_id)
    history = store.deployment_history[(project["Id"], environment["Id"], tenant_id)]
    same_release = sum(1 for d in history if store.deployments[d]["ReleaseId"] == release["Id"])
    name = f"Deploy to {environment['Name']}" + (f" (#{same_release + 1})" if same_release else "")
    deployment_id = store.next_id("Deployments")
    tenant_name = f" for {store.tenants[tenant_id]['Name']}" if tenant_id else ""
    task = new_task_doc(
        store,
        space_id=space_id,
        name="Deploy",
        description=f"Deploy {project['Name']} release {release['Version']} to {environment['Name']}{tenant_name}",
        arguments={"DeploymentId": deployment_id},
        queue_time=queue_time or now,
        queue_expiry=queue_expiry,
        project_id=project["Id"],
    )
    guided = _uses_guided_failure(project, environment, optional_bool(data, "UseGuidedFailure", False))
    deployment: Doc = {
        "Id": deployment_id,
        "SpaceId": space_id,
        "Name": name,
        "ReleaseId": release["Id"],
        "EnvironmentId": environment["Id"],
        "TenantId": tenant_id,
        "ProjectId": project["Id"],
        "ChannelId": release["ChannelId"],
        "DeploymentProcessId": release["ProjectDeploymentProcessSnapshotId"],
        "ManifestVariableSetId": f"variableset-{deployment_id}",
        "TaskId": task["Id"],
        "Created": iso(now),
        "QueueTime": iso(queue_time),
        "QueueTimeExpiry": iso(queue_expiry),
        "DeployedBy": user["Username"],
        "DeployedById": user["Id"],
        "DeployedToMachineIds": deployed_to,
        "SpecificMachineIds": str_list(data, "SpecificMachineIds"),
        "ExcludedMachineIds": str_list(data, "ExcludedMachineIds"),
        "SkipActions": str_list(data, "SkipActions"),
        "ForcePackageDownload": optional_bool(data, "ForcePackageDownload", False),
        "ForcePackageRedeployment": optional_bool(data, "ForcePackageRedeployment", False),
        "UseGuidedFailure": guided,
        "FailureEncountered": False,
        "FormValues": form_values,
        "Comments": optional_str(data, "Comments"),
        "Changes": release_changes,
        "ChangesMarkdown": changes_markdown(release_changes),
        "TentacleRetentionPeriod": None,
        "Priority": data.get("Priority") or "LifecycleDefault",
        "LastModifiedOn": iso(now),
        "Links": {
            "Self": f"/api/{space_id}/deployments/{deployment_id}",
            "Release": f"/api/{space_id}/releases/{release['Id']}",
            "Environment": f"/api/{space_id}/environments/{environment['Id']}",
            "Project": f"/api/{space_id}/projects/{project['Id']}",
            "Task": f"/api/tasks/{task['Id']}",
            "Web": f"/app#/{space_id}/deployments/{deployment_id}",
            "Artifacts": f"/api/{space_id}/artifacts?regarding={deployment_id}",
            "Interruptions": f"/api/{space_id}/interruptions?regarding={deployment_id}",
            "DeploymentProcess": f"/api/{space_id}/deploymentprocesses/{release['ProjectDeploymentProcessSnapshotId']}",
        },
    }
    if tenant_id:
        deployment["Links"]["Tenant"] = f"/api/{space_id}/tenants/{tenant_id}"
    store.deployments[deployment_id] = deployment
    history.append(deployment_id)
    deployment_event(store, deployment, "DeploymentQueued", "queued", user)
    start_run(
        store,
        TaskRun(
            task_id=task["Id"],
            kind="Deploy",
            queue_until=max(queue_time or now, now) + timedelta(seconds=store.settings.queue_delay),
            queue_expiry=queue_expiry,
            deployment_id=deployment_id,
            lock_key=(project["Id"], environment["Id"], tenant_id),
            stages=_stages(running),
            guided_failure=guided,
        ),
    )
    return deployment


def preview(store: Store, release: Doc, environment: Doc, tenant_id: TenantKey, include_disabled: bool) -> Doc:
    """DeploymentPreviewResource: which machines each step would reach."""
    project = store.projects[release["ProjectId"]]
    process = store.processes[release["ProjectDeploymentProcessSnapshotId"]]
    planned = plan_actions(
        store,
        process,
        environment_id=environment["Id"],
        channel_id=release["ChannelId"],
        tenant_id=tenant_id,
        include_disabled=include_disabled,
    )
    release_changes = changes(store, release, environment["Id"], tenant_id)
    return {
        "StepsToExecute": [preview_step(store, action) for action in planned],
        "Form": prompt_form(store, project, environment["Id"]),
        "UseGuidedFailureModeByDefault": _uses_guided_failure(project, environment, False),
        "Changes": release_changes,
        "ChangesMarkdown": changes_markdown(release_changes),
        "Links": {},
    }


def deployment_template(store: Store, release: Doc) -> Doc:
    """Where the release may go next: PromoteTo (untenanted) and TenantPromotions per connected tenant."""
    project = store.projects[release["ProjectId"]]

    def named(env_ids: list[str]) -> list[Doc]:
        return [{"Id": e, "Name": store.environments[e]["Name"], "Links": {}} for e in env_ids]

    promote_to = [] if project["TenantedDeploymentMode"] == "Tenanted" else allowed_environments(store, release, None)
    tenant_promotions = []
    if project["TenantedDeploymentMode"] != "Untenanted":
        for tenant in store.tenants.values():
            connected = tenant["ProjectEnvironments"].get(project["Id"])
            if tenant["SpaceId"] != project["SpaceId"] or connected is None:
                continue
            allowed = [e for e in allowed_environments(store, release, tenant["Id"]) if e in connected]
            tenant_promotions.append(
                {"Id": tenant["Id"], "Name": tenant["Name"], "PromoteTo": named(allowed), "Links": {}}
            )
    return {
        "PromoteTo": named(promote_to),
        "TenantPromotions": tenant_promotions,
        "IsDeploymentProcessModified": store.processes[project["DeploymentProcessId"]].get("LastSnapshotId")
        != release["ProjectDeploymentProcessSnapshotId"],
        "IsVariableSetModified": False,
        "IsLibraryVariableSetModified": False,
        "DeploymentNotes": None,
        # Every prompted variable of the project; a preview shows those in scope of its environment.
        "Form": prompt_form(store, project, None),
        "Links": {},
    }
