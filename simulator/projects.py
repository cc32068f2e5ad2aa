"""Project groups, lifecycles, projects, their deployment processes and channels, and releases."""

from __future__ import annotations

import copy
import uuid

from simulator.build_information import release_build_information, release_packages
from simulator.errors import OctopusError, bad_request
from simulator.infrastructure import created_event
from simulator.store import Doc, Store
from simulator.timeutil import iso
from simulator.validation import body_object, one_of, optional_bool, optional_str, required_str, slugify, str_list
from simulator.variables import create_variable_set

TENANTED_MODES = ("Untenanted", "TenantedOrUntenanted", "Tenanted")
RETENTION_FOREVER = {"QuantityToKeep": 0, "ShouldKeepForever": True, "Unit": "Days"}


def create_project_group(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    group_id = store.next_id("ProjectGroups")
    if not store.claim_name("ProjectGroup", space_id, name, group_id):
        raise bad_request(f"A project group with the name '{name}' already exists in this space.")
    group: Doc = {
        "Id": group_id,
        "Name": name,
        "Description": optional_str(data, "Description") or "",
        "EnvironmentIds": str_list(data, "EnvironmentIds"),
        "RetentionPolicyId": None,
        "SpaceId": space_id,
        "Links": {
            "Self": f"/api/{space_id}/projectgroups/{group_id}",
            "Projects": f"/api/{space_id}/projectgroups/{group_id}/projects{{?skip,take}}",
            "Web": f"/app#/{space_id}/projects?projectGroupId={group_id}",
        },
    }
    store.project_groups[group_id] = group
    created_event(store, "Project group", group, user)
    return group


def _phase(store: Store, space_id: str, raw: object) -> Doc:
    if not isinstance(raw, dict):
        raise bad_request("Each phase must be an object.")
    name = required_str(raw, "Name")
    automatic = str_list(raw, "AutomaticDeploymentTargets")
    optional = str_list(raw, "OptionalDeploymentTargets")
    for env_id in automatic + optional:
        env = store.environments.get(env_id)
        if env is None or env["SpaceId"] != space_id:
            raise bad_request(f"The environment '{env_id}' in phase '{name}' does not exist.")
    minimum = raw.get("MinimumEnvironmentsBeforePromotion", 0)
    return {
        "Id": raw.get("Id") or str(uuid.uuid4()),
        "Name": name,
        "AutomaticDeploymentTargets": automatic,
        "OptionalDeploymentTargets": optional,
        "MinimumEnvironmentsBeforePromotion": minimum if isinstance(minimum, int) else 0,
        "IsOptionalPhase": optional_bool(raw, "IsOptionalPhase", False),
        "IsPriorityPhase": optional_bool(raw, "IsPriorityPhase", False),
        "ReleaseRetentionPolicy": raw.get("ReleaseRetentionPolicy"),
        "TentacleRetentionPolicy": raw.get("TentacleRetentionPolicy"),
    }


def create_lifecycle(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    phases_raw = data.get("Phases") or []
    if not isinstance(phases_raw, list):
        raise bad_request("Phases must be a list.")
    phases = [_phase(store, space_id, raw) for raw in phases_raw]
    lifecycle_id = store.next_id("Lifecycles")
    if not store.claim_name("Lifecycle", space_id, name, lifecycle_id):
        raise bad_request(f"A lifecycle with the name '{name}' already exists in this space.")
    lifecycle: Doc = {
        "Id": lifecycle_id,
        "Name": name,
        "Slug": slugify(name),
        "Description": optional_str(data, "Description") or "",
        "SpaceId": space_id,
        "Phases": phases,
        "ReleaseRetentionPolicy": data.get("ReleaseRetentionPolicy") or RETENTION_FOREVER,
        "TentacleRetentionPolicy": data.get("TentacleRetentionPolicy") or RETENTION_FOREVER,
        "Links": {
            "Self": f"/api/{space_id}/lifecycles/{lifecycle_id}",
            "Preview": f"/api/{space_id}/lifecycles/{lifecycle_id}/preview",
            "Projects": f"/api/{space_id}/lifecycles/{lifecycle_id}/projects",
        },
    }
    store.lifecycles[lifecycle_id] = lifecycle
    created_event(store, "Lifecycle", lifecycle, user)
    return lifecycle


def _default_lifecycle_id(store: Store, space_id: str) -> str:
    for lifecycle in store.lifecycles.values():
        if lifecycle["SpaceId"] == space_id:
            return str(lifecycle["Id"])
    raise bad_request("The space has no lifecycle; create one first.")


def project_links(space_id: str, project_id: str, process_id: str) -> Doc:
    base = f"/api/{space_id}/projects/{project_id}"
    return {
        "Self": base,
        "Releases": f"{base}/releases{{/version}}{{?skip,take,searchByVersion}}",
        "Channels": f"{base}/channels{{/id}}{{?skip,take,partialName}}",
        "Triggers": f"{base}/triggers{{?skip,take,partialName,triggerActionType}}",
        "ScheduledTriggers": f"{base}/triggers{{?skip,take,partialName}}",
        "OrderChannels": f"{base}/channels/order",
        "Variables": f"/api/{space_id}/variables/variableset-{project_id}",
        "Progression": f"{base}/progression{{?aggregate}}",
        "DeploymentProcess": f"/api/{space_id}/deploymentprocesses/{process_id}",
        "DeploymentSettings": f"{base}/deploymentsettings",
        "Web": f"/app#/{space_id}/projects/{project_id}",
        "Logo": f"{base}/logo",
        "Summary": f"{base}/summary",
        "Runbooks": f"{base}/runbooks{{?skip,take,partialName}}",
        "RunbookSnapshots": f"{base}/runbookSnapshots{{/name}}{{?skip,take,searchByName}}",
        "Metadata": f"{base}/metadata",
    }


def create_project(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    group_id = required_str(data, "ProjectGroupId")
    group = store.project_groups.get(group_id)
    if group is None or group["SpaceId"] != space_id:
        raise bad_request(f"The project group '{group_id}' does not exist.")
    lifecycle_id = optional_str(data, "LifecycleId") or _default_lifecycle_id(store, space_id)
    lifecycle = store.lifecycles.get(lifecycle_id)
    if lifecycle is None or lifecycle["SpaceId"] != space_id:
        raise bad_request(f"The lifecycle '{lifecycle_id}' does not exist.")
    mode = one_of(data, "TenantedDeploymentMode", TENANTED_MODES, "Untenanted")
    guided = one_of(data, "DefaultGuidedFailureMode", ("EnvironmentDefault", "Off", "On"), "EnvironmentDefault")
    project_id = store.next_id("Projects")
    if not store.claim_name("Project", space_id, name, project_id):
        raise bad_request(f"A project with the name '{name}' already exists in this space.")
    process_id = f"deploymentprocess-{project_id}"
    slug = slugify(name)
    project: Doc = {
        "Id": project_id,
        "Name": name,
        "Slug": slug,
        "SpaceId": space_id,
        "Description": optional_str(data, "Description") or "",
        "ProjectGroupId": group_id,
        "LifecycleId": lifecycle_id,
        "DeploymentProcessId": process_id,
        "VariableSetId": f"variableset-{project_id}",
        "IncludedLibraryVariableSetIds": [],
        "TenantedDeploymentMode": mode,
        "DefaultGuidedFailureMode": guided,
        "DefaultToSkipIfAlreadyInstalled": False,
        "DiscreteChannelRelease": False,
        "IsDisabled": optional_bool(data, "IsDisabled", False),
        "IsVersionControlled": False,
        "PersistenceSettings": {"Type": "Database"},
        "AutoCreateRelease": False,
        "ReleaseCreationStrategy": {"ReleaseCreationPackage": None, "ChannelId": None},
        "VersioningStrategy": {
            "Template": "#{Octopus.Version.LastMajor}.#{Octopus.Version.LastMinor}.#{Octopus.Version.NextPatch}"
        },
        "AutoDeployReleaseOverrides": [],
        "Templates": [],
        "ProjectConnectivityPolicy": {
            "SkipMachineBehavior": "None",
            "TargetRoles": [],
            "AllowDeploymentsToNoTargets": False,
            "ExcludeUnhealthyTargets": False,
        },
        "ExtensionSettings": [],
        "ReleaseNotesTemplate": None,
        "DeploymentChangesTemplate": None,
        "ClonedFromProjectId": None,
        "LastModifiedOn": iso(store.now()),
        "Links": project_links(space_id, project_id, process_id),
    }
    store.projects[project_id] = project
    store.names[("ProjectSlug", space_id, slug)] = project_id
    store.processes[process_id] = {
        "Id": process_id,
        "ProjectId": project_id,
        "SpaceId": space_id,
        "Version": 0,
        "LastSnapshotId": None,
        "Steps": [],
        "Links": {
            "Self": f"/api/{space_id}/deploymentprocesses/{process_id}",
            "Project": f"/api/{space_id}/projects/{project_id}",
            "Template": f"/api/{space_id}/deploymentprocesses/{process_id}/template{{?channel,releaseId}}",
        },
    }
    create_variable_set(store, space_id, project_id)
    create_channel(store, space_id, {"Name": "Default", "ProjectId": project_id, "IsDefault": True}, None)
    created_event(store, "Project", project, user)
    return project


def create_channel(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    project_id = required_str(data, "ProjectId")
    project = store.projects.get(project_id)
    if project is None or project["SpaceId"] != space_id:
        raise bad_request(f"The project '{project_id}' does not exist.")
    lifecycle_id = optional_str(data, "LifecycleId")
    if lifecycle_id is not None and lifecycle_id not in store.lifecycles:
        raise bad_request(f"The lifecycle '{lifecycle_id}' does not exist.")
    channel_id = store.next_id("Channels")
    if not store.claim_name(f"Channel:{project_id}", space_id, name, channel_id):
        raise bad_request(f"A channel with the name '{name}' already exists in this project.")
    channel: Doc = {
        "Id": channel_id,
        "Name": name,
        "Slug": slugify(name),
        "Description": optional_str(data, "Description") or "",
        "ProjectId": project_id,
        "LifecycleId": lifecycle_id,
        "IsDefault": optional_bool(data, "IsDefault", False),
        "Rules": data.get("Rules") or [],
        "TenantTags": str_list(data, "TenantTags"),
        "SpaceId": space_id,
        "Links": {
            "Self": f"/api/{space_id}/projects/{project_id}/channels/{channel_id}",
            "Releases": f"/api/{space_id}/channels/{channel_id}/releases{{?skip,take,searchByVersion}}",
            "Project": f"/api/{space_id}/projects/{project_id}",
        },
    }
    store.channels[channel_id] = channel
    if user is not None:
        created_event(store, "Channel", channel, user)
    return channel


def _normalise_step(raw: object, project_id: str, index: int) -> Doc:
    if not isinstance(raw, dict):
        raise bad_request("Each step must be an object.")
    name = required_str(raw, "Name")
    actions_raw = raw.get("Actions") or []
    if not isinstance(actions_raw, list) or not actions_raw:
        raise bad_request(f"The step '{name}' must have at least one action.")
    properties = raw.get("Properties") or {}
    if not isinstance(properties, dict):
        raise bad_request(f"The Properties of step '{name}' must be an object.")
    actions = []
    for raw_action in actions_raw:
        if not isinstance(raw_action, dict):
            raise bad_request(f"Each action of step '{name}' must be an object.")
        action_name = required_str(raw_action, "Name")
        action_props = raw_action.get("Properties") or {}
        if not isinstance(action_props, dict):
            raise bad_request(f"The Properties of action '{action_name}' must be an object.")
        actions.append(
            {
                "Id": raw_action.get("Id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{project_id}/{name}/{action_name}")),
                "Name": action_name,
                "Slug": slugify(action_name),
                "ActionType": raw_action.get("ActionType") or "Octopus.Script",
                "Notes": raw_action.get("Notes"),
                "IsDisabled": bool(raw_action.get("IsDisabled", False)),
                "IsRequired": bool(raw_action.get("IsRequired", False)),
                "CanBeUsedForProjectVersioning": bool(raw_action.get("CanBeUsedForProjectVersioning", False)),
                "Condition": raw_action.get("Condition") or "Success",
                "Environments": str_list(raw_action, "Environments"),
                "ExcludedEnvironments": str_list(raw_action, "ExcludedEnvironments"),
                "Channels": str_list(raw_action, "Channels"),
                "TenantTags": str_list(raw_action, "TenantTags"),
                "Packages": raw_action.get("Packages") or [],
                "Properties": {str(k): v for k, v in action_props.items()},
                "WorkerPoolId": raw_action.get("WorkerPoolId"),
                "WorkerPoolVariable": raw_action.get("WorkerPoolVariable"),
                "Container": raw_action.get("Container") or {"Image": None, "FeedId": None},
                "Links": {},
            }
        )
    return {
        "Id": raw.get("Id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{project_id}/{name}")),
        "Name": name,
        "Slug": slugify(name),
        "Properties": {str(k): v for k, v in properties.items()},
        "Condition": raw.get("Condition") or "Success",
        "StartTrigger": raw.get("StartTrigger") or "StartAfterPrevious",
        "PackageRequirement": raw.get("PackageRequirement") or "LetOctopusDecide",
        "Actions": actions,
    }


def update_process(store: Store, process: Doc, body: object) -> Doc:
    """PUT a deployment process: Version must match (optimistic concurrency), steps get ids."""
    data = body_object(body)
    version = data.get("Version")
    if version is not None and version != process["Version"]:
        raise bad_request(
            "The deployment process has been modified by someone else since you loaded it. Reload and try again."
        )
    steps_raw = data.get("Steps") or []
    if not isinstance(steps_raw, list):
        raise bad_request("Steps must be a list.")
    steps = [_normalise_step(raw, process["ProjectId"], i) for i, raw in enumerate(steps_raw)]
    names = [s["Name"].lower() for s in steps]
    if len(set(names)) != len(names):
        raise bad_request("Step names must be unique within a deployment process.")
    process["Steps"] = steps
    process["Version"] += 1
    return process


def create_release(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    project_id = required_str(data, "ProjectId")
    version = required_str(data, "Version")
    project = store.projects.get(project_id)
    if project is None or project["SpaceId"] != space_id:
        raise bad_request(f"The project '{project_id}' does not exist.")
    channel_id = optional_str(data, "ChannelId")
    if channel_id is None:
        channel_id = next(
            (c["Id"] for c in store.channels.values() if c["ProjectId"] == project_id and c["IsDefault"]), None
        )
    channel = store.channels.get(channel_id or "")
    if channel is None or channel["ProjectId"] != project_id:
        raise bad_request(f"The channel '{channel_id}' does not belong to project '{project['Name']}'.")
    if (project_id, version) in store.release_versions:
        raise bad_request(f"A release with the version '{version}' already exists for project '{project['Name']}'.")
    release_id = store.next_id("Releases")
    process = store.processes[project["DeploymentProcessId"]]
    snapshot_id = f"{process['Id']}-s-{process['Version']}-{uuid.uuid5(uuid.NAMESPACE_URL, release_id).hex[:5].upper()}"
    snapshot = copy.deepcopy(process)
    snapshot["Id"] = snapshot_id
    snapshot["Links"] = {**snapshot["Links"], "Self": f"/api/{space_id}/deploymentprocesses/{snapshot_id}"}
    store.processes[snapshot_id] = snapshot
    process["LastSnapshotId"] = snapshot_id
    lifecycle_id = channel["LifecycleId"] or project["LifecycleId"]
    selected = data.get("SelectedPackages") or []
    if not isinstance(selected, list) or not all(isinstance(p, dict) for p in selected):
        raise bad_request("SelectedPackages must be a list of {ActionName, PackageReferenceName, Version}.")
    packages = release_packages(process, version, selected)
    build_information = data.get("BuildInformation")
    if build_information is None:
        build_information = release_build_information(store, space_id, packages)
    release: Doc = {
        "Id": release_id,
        "Version": version,
        "ChannelId": channel["Id"],
        "ProjectId": project_id,
        "SpaceId": space_id,
        "LifecycleId": lifecycle_id,
        "ReleaseNotes": optional_str(data, "ReleaseNotes") or "",
        "Assembled": iso(store.now()),
        "IgnoreChannelRules": bool(data.get("IgnoreChannelRules", False)),
        "ProjectDeploymentProcessSnapshotId": snapshot_id,
        "ProjectVariableSetSnapshotId": f"variableset-{project_id}-s-0-{release_id}",
        "LibraryVariableSetSnapshotIds": [],
        "SelectedPackages": [{k: p[k] for k in ("ActionName", "PackageReferenceName", "Version")} for p in packages],
        "BuildInformation": build_information,
        "VersionControlReference": None,
        "LastModifiedOn": iso(store.now()),
        "Links": {
            "Self": f"/api/{space_id}/releases/{release_id}",
            "Project": f"/api/{space_id}/projects/{project_id}",
            "Channel": f"/api/{space_id}/channels/{channel['Id']}",
            "Progression": f"/api/{space_id}/releases/{release_id}/progression",
            "Deployments": f"/api/{space_id}/releases/{release_id}/deployments{{?skip,take}}",
            "DeploymentTemplate": f"/api/{space_id}/releases/{release_id}/deployments/template",
            "DeploymentPreview": f"/api/{space_id}/releases/{release_id}/deployments/preview"
            "/{environment}{/tenant}",
            "ProjectDeploymentProcessSnapshot": f"/api/{space_id}/deploymentprocesses/{snapshot_id}",
            "Web": f"/app#/{space_id}/releases/{release_id}",
        },
    }
    store.releases[release_id] = release
    store.release_versions[(project_id, version)] = release_id
    created_event(store, "Release", release, user)
    return release


def find_project(store: Store, space_id: str, id_or_slug: str) -> Doc:
    project = store.projects.get(id_or_slug)
    if project is None:
        found = store.names.get(("ProjectSlug", space_id, id_or_slug.lower()))
        project = store.projects.get(found or "")
    if project is None or project["SpaceId"] != space_id:
        raise OctopusError(404, f"The resource '{id_or_slug}' was not found.")
    return project
