"""What a promotion deploys: for each component, in the rules' order, the release, or why it is skipped or fails
(octopus-api.md §3.2-§3.5, §8.1, §8.2). The plan engine calls `choose_components` at "Plan the release" and
freezes the answer; `workers.release_notes.plan_notes` renders it for the approvers.

Per component:
- tenant: an untenanted component in a tenanted parent drops the tenant; a tenant not connected to the
  component, or not to the destination for it, skips it; a tenanted-only component in an untenanted parent
  is skipped;
- `promote`: the release of the newest successful deployment to a source environment (`workers.promotion_source`)
  in the channel, matching the pattern and allowed to go to the destination (per tenant where tenanted); the
  destination already running it skips the component ("already current");
- `redeploy`: what the destination (and tenant) runs now, in the rules' channel if one is named;
- `always_latest`: the channel's newest release that matches the pattern and may go to the destination;
- no release: `not_found` says skip, warn (skip, marked as a warning) or fail;
- prompted variables (`workers.prompted_values`): a required one without a value fails, naming it;
- a component of another space (`workers.component_space`) is looked up there, with the destination and the
  tenant matched by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from workers.component_space import place_of
from workers.deployment_history import SuccessfulDeployments
from workers.directory import Directory, Doc, UnknownName
from workers.octopus import OctopusClient
from workers.promotion_release import ReleaseSearch
from workers.promotion_source import NotInLifecycle, Sources, source_environments
from workers.prompted_values import MissingValues, form_values
from workers.release_notes import component_notes
from workers.release_pattern import derive_pattern, is_template
from workers.rules import ComponentRule, Orchestration

Action = Literal["deploy", "skip", "fail"]


@dataclass(frozen=True)
class ComponentChoice:
    project: str  # the rules' project name
    project_id: str | None
    action: Action
    reason: str | None  # why skipped or failed, or a warning, in plain words
    release_id: str | None
    release_version: str | None
    channel_id: str | None
    from_version: str | None  # what the destination (and tenant) runs now, if anything
    source_environment: str | None  # the environment name the release was taken from (promote mode)
    tenant_id: str | None  # the tenant the component deployment carries (None when dropped/untenanted)
    form_values: dict[str, str]  # FormValues for the deployment: element Name -> value
    notes_markdown: str  # this component's section of the release notes ('' when not deploying)
    warning: bool = False  # skipped, and the approvers should notice (not_found: warn)
    from_release_id: str | None = None  # the release it replaces, and the deployment that put it there
    from_deployment_id: str | None = None
    # A component of another space than the orchestration's: that space, and the destination's id there.
    space_id: str | None = None
    environment_id: str | None = None


def choose_components(
    *,
    client: OctopusClient,
    directory: Directory,
    space_id: str,
    orchestration: Orchestration,
    parent_release_version: str | None,
    destination_environment_id: str,
    tenant_id: str | None,
    parent_form_values: dict[str, str] | None = None,
) -> list[ComponentChoice]:
    """One choice per component of the orchestration, in its order. With no parent release (a promotion on
    demand), a pattern that is a template of the parent's version limits nothing."""
    context = _Context(
        client=client,
        directory=directory,
        space_id=space_id,
        orchestration=orchestration,
        parent_version=parent_release_version,
        destination=directory.environment_by_id(space_id, destination_environment_id),
        tenant_id=tenant_id,
        parent_form_values=parent_form_values or {},
    )
    context.history = _history(context)
    return [_choose(context, component) for component in orchestration.components]


def _history(context: _Context) -> SuccessfulDeployments:
    """One list of successful deployments for every component's two questions (what the destination runs, what
    succeeded last in its sources). A component whose project, channel or lifecycle cannot be read here adds
    nothing: its own choice reports why."""
    projects: set[str] = set()
    environments = {context.destination["Id"]}
    for component in context.orchestration.components:
        try:
            project = context.directory.project(context.space_id, component.project)
            projects.add(project["Id"])
            if component.mode == "promote":
                sources = _sources(context, project, _channel(context, component, project))
                environments.update(sources.environment_ids)
        except (UnknownName, _Stop, NotInLifecycle):
            continue
    return SuccessfulDeployments(
        client=context.client,
        space_id=context.space_id,
        project_ids=frozenset(projects),
        environment_ids=frozenset(environments),
    )


@dataclass
class _Context:
    client: OctopusClient
    directory: Directory
    space_id: str
    orchestration: Orchestration
    parent_version: str | None
    destination: Doc
    tenant_id: str | None
    parent_form_values: dict[str, str]
    missing_tenant: str | None = None  # the parent's tenant, which the component's space does not have
    history: SuccessfulDeployments | None = None


class _Stop(Exception):
    def __init__(self, action: Action, reason: str, *, warning: bool = False) -> None:
        super().__init__(reason)
        self.action: Action = action
        self.reason = reason
        self.warning = warning


@dataclass
class _Draft:
    project: str
    project_id: str | None = None
    release: Doc | None = None
    channel_id: str | None = None
    from_version: str | None = None
    from_release_id: str | None = None
    from_deployment_id: str | None = None
    source_environment: str | None = None
    tenant_id: str | None = None
    form_values: dict[str, str] = field(default_factory=dict)
    notes_markdown: str = ""

    def finish(self, action: Action, reason: str | None, *, warning: bool = False) -> ComponentChoice:
        deploying = action == "deploy"
        release = self.release if deploying else None
        return ComponentChoice(
            project=self.project,
            project_id=self.project_id,
            action=action,
            reason=reason,
            release_id=release["Id"] if release else None,
            release_version=release["Version"] if release else None,
            channel_id=self.channel_id,
            from_version=self.from_version,
            source_environment=self.source_environment if deploying else None,
            tenant_id=self.tenant_id,
            form_values=self.form_values if deploying else {},
            notes_markdown=self.notes_markdown if deploying else "",
            warning=warning,
            from_release_id=self.from_release_id,
            from_deployment_id=self.from_deployment_id,
        )


def _choose(context: _Context, component: ComponentRule) -> ComponentChoice:
    draft = _Draft(project=component.project)
    try:
        place = place_of(
            context.directory,
            context.orchestration,
            component,
            space_id=context.space_id,
            environment=context.destination,
            tenant_id=context.tenant_id,
        )
    except UnknownName as unknown:
        return draft.finish("fail", str(unknown))
    moved = place.moved(context.space_id)
    if moved:  # everything about the component is looked up and acted on in its own space
        context = replace(
            context,
            space_id=place.space_id,
            destination=place.environment,
            tenant_id=place.tenant_id,
            missing_tenant=place.missing_tenant,
        )
    try:
        _decide(context, component, draft)
    except _Stop as stop:
        choice = draft.finish(stop.action, stop.reason, warning=stop.warning)
    except UnknownName as unknown:
        choice = draft.finish("fail", str(unknown))
    else:
        choice = draft.finish("deploy", None)
    return replace(choice, space_id=place.space_id, environment_id=place.environment["Id"]) if moved else choice


def _decide(context: _Context, component: ComponentRule, draft: _Draft) -> None:
    space_id, directory = context.space_id, context.directory
    project = directory.project(space_id, component.project)
    draft.project_id = project["Id"]
    draft.tenant_id = _tenant_for(context, project)
    channel = _channel(context, component, project)
    draft.channel_id = channel["Id"]
    pattern = _pattern(context, component)
    search = ReleaseSearch(
        client=context.client,
        directory=directory,
        space_id=space_id,
        project=project,
        channel_id=channel["Id"],
        pattern=pattern,
        destination_id=context.destination["Id"],
        tenant_id=draft.tenant_id,
        history=context.history,
    )
    running = search.current(channel_id=None)
    current = running.release if running else None
    draft.from_version = current["Version"] if current else None
    draft.from_release_id = current["Id"] if current else None
    draft.from_deployment_id = running.deployment["Id"] if running else None
    where = context.destination["Name"]
    if component.mode == "redeploy":
        release = search.running_now(channel_id=channel["Id"] if component.channel else None)
        if release is None:
            raise _not_found(component, f"nothing of {project['Name']} runs in {where} to redeploy")
    elif component.mode == "always_latest":
        release = search.newest_in_channel()
        if release is None:
            raise _not_found(
                component, f"no release{_matching(pattern)} in channel {channel['Name']} may go to {where}"
            )
    else:
        release = _promoted(context, component, search, project, channel, draft)
        if current is not None and release["Id"] == current["Id"]:
            raise _Stop("skip", f"{release['Version']} is already current in {where}")
    draft.release = release
    preview = search.preview(release)
    try:
        draft.form_values = form_values(preview.get("Form"), component.form_values, context.parent_form_values)
    except MissingValues as missing:
        names = ", ".join(missing.names)
        raise _Stop(
            "fail", f"prompted variable(s) {names} of {project['Name']} need a value: set form_values"
        ) from None
    draft.notes_markdown = component_notes(
        project=project["Name"], release=release, preview=preview, from_version=draft.from_version
    )


def _promoted(
    context: _Context, component: ComponentRule, search: ReleaseSearch, project: Doc, channel: Doc, draft: _Draft
) -> Doc:
    """The release to promote, from the source environments of the destination's lifecycle phase."""
    space_id, directory, destination = context.space_id, context.directory, context.destination
    sources = _sources(context, project, channel)
    pattern = search.pattern
    if sources.environment_ids:
        found = search.newest_succeeded(sources.environment_ids, tenant_id=_source_tenant(context, project, sources))
        if found is not None:
            draft.source_environment = directory.environment_by_id(space_id, found[1])["Name"]
            return found[0]
    if sources.channel_fallback:
        release = search.newest_in_channel()
        if release is not None:
            return release
    names = [directory.environment_by_id(space_id, env)["Name"] for env in sources.environment_ids]
    where = f" succeeded in {' or '.join(names)}" if names else f" in channel {channel['Name']}"
    raise _not_found(component, f"no release{_matching(pattern)}{where} may go to {destination['Name']}")


def _channel(context: _Context, component: ComponentRule, project: Doc) -> Doc:
    directory = context.directory
    if component.channel:
        return directory.channel(context.space_id, project, component.channel)
    return directory.default_channel(context.space_id, project)


def _sources(context: _Context, project: Doc, channel: Doc) -> Sources:
    """The environments a promotion to the destination takes its release from."""
    space_id, directory, destination = context.space_id, context.directory, context.destination
    named = context.orchestration.source_environment
    named_id = directory.environment(space_id, named)["Id"] if named else None
    if named_id == destination["Id"]:
        raise _Stop("skip", f"cannot promote from {destination['Name']} to itself")
    lifecycle = directory.lifecycle(space_id, channel.get("LifecycleId") or project["LifecycleId"])
    try:
        return source_environments(lifecycle.get("Phases") or [], destination["Id"], named_id)
    except NotInLifecycle:
        raise _Stop("fail", f"{destination['Name']} is in no phase of the lifecycle {lifecycle['Name']}") from None


def _source_tenant(context: _Context, project: Doc, sources: Sources) -> str | None:
    """The tenant filters the source deployments only where it is connected to a source (as the step template)."""
    if context.tenant_id is None or project.get("TenantedDeploymentMode") == "Untenanted":
        return None
    tenant = context.directory.tenant_by_id(context.space_id, context.tenant_id)
    connected = set((tenant.get("ProjectEnvironments") or {}).get(project["Id"]) or [])
    return context.tenant_id if connected & set(sources.environment_ids) else None


def _tenant_for(context: _Context, project: Doc) -> str | None:
    """The tenant the component deployment carries; raises _Stop where the component is skipped (§3.2)."""
    mode = project.get("TenantedDeploymentMode") or "Untenanted"
    if context.missing_tenant is not None and mode != "Untenanted":
        raise _Stop("skip", f"tenant {context.missing_tenant} is not in the space of {project['Name']}")
    if context.tenant_id is None:
        if mode == "Tenanted":
            raise _Stop("skip", f"{project['Name']} deploys only for tenants, and the parent deployment has none")
        return None
    if mode == "Untenanted":
        return None  # the tenant is dropped: the component deploys untenanted
    tenant = context.directory.tenant_by_id(context.space_id, context.tenant_id)
    environments = (tenant.get("ProjectEnvironments") or {}).get(project["Id"])
    if environments is None:
        raise _Stop("skip", f"tenant {tenant['Name']} is not connected to {project['Name']}")
    if context.destination["Id"] not in environments:
        raise _Stop(
            "skip", f"tenant {tenant['Name']} does not deploy {project['Name']} to {context.destination['Name']}"
        )
    return context.tenant_id


def _pattern(context: _Context, component: ComponentRule) -> str | None:
    template = context.orchestration.release_pattern_for(component)
    if template is None or not is_template(template):
        return template
    if context.parent_version is None:
        return None
    derived = derive_pattern(template, context.parent_version)
    if derived is None:
        raise _Stop("fail", f"the parent's version {context.parent_version} has too few parts for {template}")
    return derived


def _not_found(component: ComponentRule, message: str) -> _Stop:
    if component.not_found == "fail":
        return _Stop("fail", message)
    return _Stop("skip", message, warning=component.not_found == "warn")


def _matching(pattern: str | None) -> str:
    return f" matching {pattern}" if pattern else ""
