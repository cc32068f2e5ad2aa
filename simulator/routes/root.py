"""The API root, the space root and spaces."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.accounts import create_space
from simulator.paging import collection
from simulator.routes.common import allow, body, named_filter, ok, path_param, store
from simulator.store import get_doc

VERSION = "2024.1.11000"
INSTALLATION_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "octopus-simulator"))

GLOBAL_LINKS = {
    "Self": "/api",
    "CurrentUser": "/api/users/me",
    "Spaces": "/api/spaces{/id}{?skip,ids,take,partialName}",
    "SpaceHome": "/api/{spaceId}",
    "Tasks": (
        "/api/tasks{/id}{?skip,active,environment,tenant,project,name,node,running,states,"
        "hasPendingInterruptions,hasWarningsOrErrors,take,ids,partialName,spaces,includeSystem}"
    ),
    "Events": (
        "/api/events{/id}{?skip,regarding,regardingAny,user,users,projects,projectGroups,environments,"
        "eventGroups,eventCategories,eventAgents,tags,tenants,from,to,internal,fromAutoId,toAutoId,"
        "documentTypes,asCsv,take,ids,spaces,includeSystem,excludeDifference}"
    ),
    "EventCategories": "/api/events/categories{?appliesTo}",
    "EventGroups": "/api/events/groups{?appliesTo}",
    "Users": "/api/users{/id}{?skip,take,ids,filter}",
    "Teams": "/api/teams{/id}{?skip,take,ids,partialName,spaces,includeSystem}",
    "TeamMembership": "/api/teammembership{?userId,spaces,includeSystem}",
    "Web": "/app",
}
SPACE_COLLECTIONS = {
    "Channels": "channels{/id}{?skip,take,partialName}",
    "Dashboard": (
        "dashboard{?projectId,releaseId,selectedTenants,selectedTags,showAll,"
        "highestLatestVersionPerProjectAndEnvironment}"
    ),
    "DashboardDynamic": "dashboard/dynamic{?projects,environments,includePrevious}",
    "DeploymentProcesses": "deploymentprocesses{/id}{?skip,take,ids}",
    "Deployments": "deployments{/id}{?skip,take,ids,projects,environments,tenants,channels,taskState,partialName}",
    "Environments": "environments{/id}{?name,skip,ids,take,partialName}",
    "Interruptions": "interruptions{/id}{?skip,take,regarding,pendingOnly,ids}",
    "Lifecycles": "lifecycles{/id}{?skip,take,ids,partialName}",
    "Machines": (
        "machines{/id}{?skip,take,name,ids,partialName,roles,isDisabled,healthStatuses,commStyles,"
        "tenantIds,tenantTags,environmentIds,thumbprint,deploymentId,shellNames}"
    ),
    "ProjectGroups": "projectgroups{/id}{?skip,take,ids,partialName}",
    "Projects": "projects{/id}{?name,skip,ids,clone,take,partialName,clonedFromProjectId}",
    "Progression": "progression/{projectId}{?aggregate}",
    "Releases": "releases{/id}{?skip,take,ids}",
    "Subscriptions": "subscriptions{/id}{?skip,take,ids,partialName}",
    "TagSets": "tagsets{/id}{?skip,take,ids,partialName}",
    "Tasks": "tasks{/id}{?skip,take,ids,partialName}",
    "Teams": "teams{/id}{?skip,take,ids,partialName,includeSystem}",
    "Tenants": "tenants{/id}{?skip,projectId,name,tags,take,ids,clone,partialName,isDisabled}",
}


async def api_root(request: Request) -> Response:
    default = store(request).default_space_id
    links = dict(GLOBAL_LINKS)
    links.update({name: f"/api/{default}/{template}" for name, template in SPACE_COLLECTIONS.items()})
    return ok(
        {
            "Application": "Octopus Deploy",
            "Version": VERSION,
            "ApiVersion": "3.0.0",
            "InstallationId": INSTALLATION_ID,
            "IsEarlyAccessProgram": False,
            "HasLongTermSupport": False,
            "Links": links,
        }
    )


async def space_root(request: Request) -> Response:
    space_id = path_param(request, "space_id")
    get_doc(store(request).spaces, space_id)
    links = {"Self": f"/api/{space_id}"}
    links.update({name: f"/api/{space_id}/{template}" for name, template in SPACE_COLLECTIONS.items()})
    return ok({"Links": links})


async def list_spaces(request: Request) -> Response:
    return ok(collection(request, named_filter(request, store(request).spaces.values()), "Space"))


async def all_spaces(request: Request) -> Response:
    return ok(list(store(request).spaces.values()))


async def get_space(request: Request) -> Response:
    return ok(get_doc(store(request).spaces, path_param(request, "id")))


async def post_space(request: Request) -> Response:
    allow(request, "SpaceCreate")
    return ok(create_space(store(request), await body(request)), 201)


routes = [
    Route("/api", api_root),
    Route("/api/", api_root),
    Route("/api/spaces", list_spaces),
    Route("/api/spaces", post_space, methods=["POST"]),
    Route("/api/spaces/all", all_spaces),
    Route("/api/spaces/{id}", get_space),
]
space_root_route = Route("/api/{space_id}", space_root)
