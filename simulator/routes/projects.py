"""Project groups, lifecycles, projects, deployment processes, channels and progression."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.dashboards import progression
from simulator.errors import bad_request, not_found
from simulator.lifecycle import phases
from simulator.paging import collection, int_param, list_param
from simulator.projects import (
    create_channel,
    create_lifecycle,
    create_project,
    create_project_group,
    find_project,
    update_process,
)
from simulator.routes.common import allow, body, named_filter, ok, path_param, space_id, store
from simulator.routes.releases import release_list
from simulator.store import Doc, get_doc, in_space
from simulator.validation import body_object, one_of, optional_bool, optional_str


async def list_groups(request: Request) -> Response:
    return ok(
        collection(
            request, named_filter(request, in_space(store(request).project_groups, space_id(request))), "ProjectGroup"
        )
    )


async def all_groups(request: Request) -> Response:
    return ok(named_filter(request, in_space(store(request).project_groups, space_id(request))))


async def get_group(request: Request) -> Response:
    return ok(get_doc(store(request).project_groups, path_param(request, "id"), space_id(request)))


async def post_group(request: Request) -> Response:
    user = allow(request, "ProjectGroupCreate")
    return ok(create_project_group(store(request), space_id(request), await body(request), user), 201)


async def group_projects(request: Request) -> Response:
    group = get_doc(store(request).project_groups, path_param(request, "id"), space_id(request))
    projects = [p for p in store(request).projects.values() if p["ProjectGroupId"] == group["Id"]]
    return ok(collection(request, projects, "Project"))


async def list_lifecycles(request: Request) -> Response:
    return ok(
        collection(request, named_filter(request, in_space(store(request).lifecycles, space_id(request))), "Lifecycle")
    )


async def all_lifecycles(request: Request) -> Response:
    return ok(named_filter(request, in_space(store(request).lifecycles, space_id(request))))


async def get_lifecycle(request: Request) -> Response:
    return ok(get_doc(store(request).lifecycles, path_param(request, "id"), space_id(request)))


async def lifecycle_preview(request: Request) -> Response:
    lifecycle = get_doc(store(request).lifecycles, path_param(request, "id"), space_id(request))
    return ok({**lifecycle, "Phases": phases(store(request), lifecycle)})


async def post_lifecycle(request: Request) -> Response:
    user = allow(request, "LifecycleCreate")
    return ok(create_lifecycle(store(request), space_id(request), await body(request), user), 201)


def _projects(request: Request) -> list[Doc]:
    return named_filter(request, in_space(store(request).projects, space_id(request)))


async def list_projects(request: Request) -> Response:
    return ok(collection(request, _projects(request), "Project"))


async def all_projects(request: Request) -> Response:
    return ok(_projects(request))


async def get_project(request: Request) -> Response:
    return ok(find_project(store(request), space_id(request), path_param(request, "id")))


async def post_project(request: Request) -> Response:
    user = allow(request, "ProjectCreate")
    return ok(create_project(store(request), space_id(request), await body(request), user), 201)


async def put_project(request: Request) -> Response:
    allow(request, "ProjectEdit")
    project = find_project(store(request), space_id(request), path_param(request, "id"))
    data = body_object(await body(request))
    if "LifecycleId" in data:
        lifecycle_id = optional_str(data, "LifecycleId")
        if lifecycle_id not in store(request).lifecycles:
            raise bad_request(f"The lifecycle '{lifecycle_id}' does not exist.")
        project["LifecycleId"] = lifecycle_id
    if "TenantedDeploymentMode" in data:
        project["TenantedDeploymentMode"] = one_of(
            data, "TenantedDeploymentMode", ("Untenanted", "TenantedOrUntenanted", "Tenanted"), "Untenanted"
        )
    if "DefaultGuidedFailureMode" in data:
        project["DefaultGuidedFailureMode"] = one_of(
            data, "DefaultGuidedFailureMode", ("EnvironmentDefault", "Off", "On"), "EnvironmentDefault"
        )
    if "IsDisabled" in data:
        project["IsDisabled"] = optional_bool(data, "IsDisabled", False)
    if "Description" in data:
        project["Description"] = optional_str(data, "Description") or ""
    return ok(project)


async def project_channels(request: Request) -> Response:
    project = find_project(store(request), space_id(request), path_param(request, "id"))
    channels = [c for c in store(request).channels.values() if c["ProjectId"] == project["Id"]]
    return ok(collection(request, named_filter(request, channels), "Channel"))


async def project_channel(request: Request) -> Response:
    project = find_project(store(request), space_id(request), path_param(request, "id"))
    channel = get_doc(store(request).channels, path_param(request, "channel_id"), space_id(request))
    if channel["ProjectId"] != project["Id"]:
        raise bad_request(f"The channel '{channel['Id']}' does not belong to '{project['Name']}'.")
    return ok(channel)


async def project_releases(request: Request) -> Response:
    project = find_project(store(request), space_id(request), path_param(request, "id"))
    return ok(collection(request, release_list(request, lambda r: r["ProjectId"] == project["Id"]), "Release"))


async def project_channel_releases(request: Request) -> Response:
    project = find_project(store(request), space_id(request), path_param(request, "id"))
    channel_id = path_param(request, "channel_id")
    releases = release_list(request, lambda r: r["ProjectId"] == project["Id"] and r["ChannelId"] == channel_id)
    return ok(collection(request, releases, "Release"))


async def project_release_by_version(request: Request) -> Response:
    project = find_project(store(request), space_id(request), path_param(request, "id"))
    version = path_param(request, "version")
    release_id = store(request).release_versions.get((project["Id"], version))
    if release_id is None:
        raise not_found(f"{project['Name']} release {version}")
    return ok(store(request).releases[release_id])


async def project_progression(request: Request) -> Response:
    key = path_param(request, "id")
    project = find_project(store(request), space_id(request), key)
    count = int_param(request, "releaseHistoryCount", 0)
    return ok(progression(store(request), project, count or None))


async def get_process(request: Request) -> Response:
    return ok(get_doc(store(request).processes, path_param(request, "id"), space_id(request)))


async def project_process(request: Request) -> Response:
    project = find_project(store(request), space_id(request), path_param(request, "id"))
    return ok(store(request).processes[project["DeploymentProcessId"]])


async def put_process(request: Request) -> Response:
    allow(request, "ProcessEdit")
    process = get_doc(store(request).processes, path_param(request, "id"), space_id(request))
    if "-s-" in process["Id"]:
        raise bad_request("A release snapshot of a deployment process cannot be modified.")
    return ok(update_process(store(request), process, await body(request)))


def _channels(request: Request) -> list[Doc]:
    return named_filter(request, in_space(store(request).channels, space_id(request)))


async def list_channels(request: Request) -> Response:
    return ok(collection(request, _channels(request), "Channel"))


async def all_channels(request: Request) -> Response:
    return ok(_channels(request))


async def get_channel(request: Request) -> Response:
    return ok(get_doc(store(request).channels, path_param(request, "id"), space_id(request)))


async def post_channel(request: Request) -> Response:
    user = allow(request, "ProjectEdit")
    return ok(create_channel(store(request), space_id(request), await body(request), user), 201)


async def channel_releases(request: Request) -> Response:
    channel = get_doc(store(request).channels, path_param(request, "id"), space_id(request))
    return ok(collection(request, release_list(request, lambda r: r["ChannelId"] == channel["Id"]), "Release"))


async def processes_list(request: Request) -> Response:
    ids = set(list_param(request, "ids"))
    found = [p for p in in_space(store(request).processes, space_id(request)) if not ids or p["Id"] in ids]
    return ok(collection(request, found, "DeploymentProcess"))


routes = [
    Route("/api/projectgroups", list_groups),
    Route("/api/projectgroups", post_group, methods=["POST"]),
    Route("/api/projectgroups/all", all_groups),
    Route("/api/projectgroups/{id}", get_group),
    Route("/api/projectgroups/{id}/projects", group_projects),
    Route("/api/lifecycles", list_lifecycles),
    Route("/api/lifecycles", post_lifecycle, methods=["POST"]),
    Route("/api/lifecycles/all", all_lifecycles),
    Route("/api/lifecycles/{id}", get_lifecycle),
    Route("/api/lifecycles/{id}/preview", lifecycle_preview),
    Route("/api/projects", list_projects),
    Route("/api/projects", post_project, methods=["POST"]),
    Route("/api/projects/all", all_projects),
    Route("/api/projects/{id}", get_project),
    Route("/api/projects/{id}", put_project, methods=["PUT"]),
    Route("/api/projects/{id}/channels", project_channels),
    Route("/api/projects/{id}/channels/{channel_id}", project_channel),
    Route("/api/projects/{id}/channels/{channel_id}/releases", project_channel_releases),
    Route("/api/projects/{id}/releases", project_releases),
    Route("/api/projects/{id}/releases/{version}", project_release_by_version),
    Route("/api/projects/{id}/progression", project_progression),
    Route("/api/projects/{id}/deploymentprocesses", project_process),
    Route("/api/progression/{id}", project_progression),
    Route("/api/deploymentprocesses", processes_list),
    Route("/api/deploymentprocesses/{id}", get_process),
    Route("/api/deploymentprocesses/{id}", put_process, methods=["PUT"]),
    Route("/api/channels", list_channels),
    Route("/api/channels", post_channel, methods=["POST"]),
    Route("/api/channels/all", all_channels),
    Route("/api/channels/{id}", get_channel),
    Route("/api/channels/{id}/releases", channel_releases),
]
