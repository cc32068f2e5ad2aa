"""The rules file: which orchestrations the conductor runs, and how.

YAML, so that it drops into a Helm values file or a ConfigMap. Validated on load; each problem is
reported with the line it is on and the field it concerns.

    orchestrations:
      - name: sample-app
        space: Default                      # name or Spaces-<n>
        parent_project: Release Orchestration
        components:                         # in deployment order
          - project: Database
          - project: Web API
            space: null                     # optional: the component's own space (name or Spaces-<n>);
                                            # default: the orchestration's. Its environments, channels and
                                            # tenants are matched by name there
            channel: Default                # optional: only releases of this channel (default: IsDefault)
            release_pattern: "2021.1.0.*"   # optional: only versions matching this wildcard, or a template
                                            # of the parent release's version: "{parent:3}.*"
            mode: promote                   # promote | redeploy | always_latest (a promotion's choice)
            not_found: warn                 # skip | warn | fail: a promotion that finds no release
            form_values: {DatabaseName: sample}  # prompted variables by name; else the parent's, by name
            requires: {project: Database, version: ">=2021.3.0"}  # or a list: checked before it deploys
            unmet: fail                     # skip | fail: a requirement the destination does not meet
        release_pattern: "{parent:3}.*"     # optional: the components' pattern where they set none
        source_environment: null            # optional: promote from here; default: from the lifecycle
        on_failure: stop                    # stop | continue | rollback: after a failed component
        redeploy:
          trigger_categories: [MachineAdded, MachineHealthy]
          redeploy_when_present: false
          stop_on_failure: true
          group_window_seconds: 5
          deployment_timeout_seconds: 43200 # running time (waiting for people does not count); then cancel
          create_grace_seconds: 180         # a POST that got no answer may still be acted on for this long
        approvals:
          environment: null                 # default: the component deployment's own environment
          tenant: same                      # same | any
          relay_abort: false
          keep_looking_seconds: 3600
          look_again_seconds: 5                # then 10, 20, ... up to look_again_max_seconds
          look_again_max_seconds: 300
          redeploy_approvals: reuse         # reuse | leave_to_people: a person's earlier approval of that release
          bind_others: null                 # e.g. {release_pattern: "{parent:3}.*"}: bind people's deployments
        notify:                             # a summary when a promotion or redeploy plan ends
          webhooks:                         # JSON, signed per Standard Webhooks (CONDUCTOR_NOTIFY_WEBHOOK_SECRET)
            - url: https://hooks.example.com/releases
              kinds: [promotion, redeploy]  # which plans (default both)
              outcomes: [succeeded, failed] # which ends (default both)
          email:                            # plain text through CONDUCTOR_SMTP_HOST
            to: [ops@example.com, "Release Team <releases@example.com>"]
            kinds: [promotion]
            outcomes: [failed]
        stuck_after_seconds: null           # report any deployment of the components running longer (running time)
        cancel_stuck: false                 # true: also cancel it, with a note saying why
    exclusion_groups:                       # projects that must not deploy to the same environment at once
      - name: web-tier                      # letters, digits, ' ', '.', '_', '-'; unique
        projects: [Web API, Web UI]         # at least two, in `space` (default: Default)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, NameEmail, ValidationError, field_validator, model_validator

from workers.approval_records import LONGEST_KEEP_LOOKING_SECONDS
from workers.release_pattern import check_template, derive_pattern, is_template, version_matches
from workers.rules_suggest import did_you_mean
from workers.version_range import parse_range

# Machine categories that can mean "a target became deployable" (octopus-api.md §1.5).
TRIGGER_CATEGORIES = ("MachineAdded", "MachineHealthy", "MachineEnabled", "MachineHasWarnings")
TriggerCategory = Literal["MachineAdded", "MachineHealthy", "MachineEnabled", "MachineHasWarnings"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VersionRequirement(_Strict):
    """A component deploys only where the destination runs a release of `project` within `version`."""

    project: str = Field(min_length=1, description="the Octopus project whose release must be in range")
    version: str = Field(min_length=1, description="a version range, e.g. '>=2021.3.0' or '>=2021.3.0,<2022'")

    @field_validator("version")
    @classmethod
    def _readable_range(cls, version: str) -> str:
        parse_range(version)
        return version


class ComponentRule(_Strict):
    project: str = Field(min_length=1, description="Octopus project name")
    space: str | None = Field(
        None,
        min_length=1,
        description="the component's own space (name or Spaces-<n>); default: the orchestration's. Environments, "
        "channels and tenants are matched there by name",
    )
    channel: str | None = Field(None, min_length=1, description="only releases of this channel")
    release_pattern: str | None = Field(
        None, min_length=1, description="wildcard on the release version, or a template such as '{parent:3}.*'"
    )
    mode: Literal["promote", "redeploy", "always_latest"] = Field(
        "promote", description="what a promotion deploys: promote from the source, redeploy, or the newest"
    )
    not_found: Literal["skip", "warn", "fail"] = Field(
        "warn", description="what a promotion does when no release matches: skip quietly, warn, or fail"
    )
    form_values: dict[str, str] = Field(
        default_factory=dict, description="prompted variables by name; otherwise the parent's of the same name"
    )
    requires: tuple[VersionRequirement, ...] = Field(
        (), description="releases of other projects the destination must run before a promotion deploys this one"
    )
    unmet: Literal["skip", "fail"] = Field(
        "fail", description="what a promotion does when a requirement is not met: skip the component, or fail it"
    )

    @field_validator("release_pattern")
    @classmethod
    def _readable_pattern(cls, pattern: str | None) -> str | None:
        return _checked_pattern(pattern)

    @field_validator("requires", mode="before")
    @classmethod
    def _one_or_a_list(cls, requires: object) -> object:
        return [requires] if isinstance(requires, dict) else requires

    @model_validator(mode="after")
    def _requires_others(self) -> ComponentRule:
        names = [item.project.casefold() for item in self.requires]
        if self.project.casefold() in names:
            raise ValueError(f"{self.project} cannot require a version of itself")
        twice = sorted({item.project for item in self.requires if names.count(item.project.casefold()) > 1})
        if twice:
            raise ValueError(f"requires names {', '.join(twice)} twice: put both bounds in one range")
        return self

    def matches_version(self, version: str, parent_version: str | None = None) -> bool:
        """A template applies only where a parent release is known (a promotion); elsewhere it limits nothing."""
        pattern = self.release_pattern
        if pattern is not None and is_template(pattern):
            pattern = None if parent_version is None else derive_pattern(pattern, parent_version)
        return version_matches(version, pattern)


class RedeployRule(_Strict):
    enabled: bool = True
    trigger_categories: tuple[TriggerCategory, ...] = ("MachineAdded", "MachineHealthy")
    redeploy_when_present: bool = False
    stop_on_failure: bool = True
    group_window_seconds: float = Field(5.0, ge=0, le=600)
    deployment_timeout_seconds: int = Field(
        12 * 3600,
        ge=1,
        description="limit on a deployment's running time (Executing, no pending interruption); past it the "
        "conductor cancels the deployment, and fails the step once Octopus has ended it",
    )
    task_check_seconds: int = Field(30, ge=1, le=3600, description="read the task when no event came")
    create_grace_seconds: int = Field(
        180,
        ge=1,
        description="how long Octopus may still act on a POST of a deployment that got no answer; only after "
        "it does the conductor look for that deployment and, if it is surely absent, POST again",
    )


class BindOthersRule(_Strict):
    """Binds component deployments made by people (not by the conductor) to parent deployments explicitly."""

    release_pattern: str = Field(
        min_length=1,
        description="the component release version must match this pattern derived from the parent release's "
        "version, e.g. '{parent:3}.*'",
    )

    @field_validator("release_pattern")
    @classmethod
    def _names_the_parent(cls, template: str) -> str:
        check_template(template)
        if not is_template(template):
            raise ValueError("name the parent release's version in it, e.g. '{parent:3}.*'")
        return template


class ApprovalRule(_Strict):
    enabled: bool = True
    environment: str | None = Field(None, min_length=1, description="environment whose approvals count")
    tenant: Literal["same", "any"] = "same"
    relay_abort: bool = False
    keep_looking_seconds: int = Field(3600, ge=0, le=LONGEST_KEEP_LOOKING_SECONDS)
    look_again_seconds: float = Field(5.0, gt=0, le=3600, description="first wait for a missing approval; doubles")
    look_again_max_seconds: float = Field(300.0, gt=0, le=3600, description="longest wait between two looks")
    redeploy_approvals: Literal["reuse", "leave_to_people"] = Field(
        "reuse", description="a redeploy by the conductor reuses a person's earlier approval of that very release"
    )
    bind_others: BindOthersRule | None = Field(None, description="bind deployments made by people to a parent")

    @model_validator(mode="after")
    def _waits_in_order(self) -> ApprovalRule:
        if self.look_again_max_seconds < self.look_again_seconds:
            raise ValueError("look_again_max_seconds must not be below look_again_seconds")
        return self


class PromotionRule(_Strict):
    """Orchestrated promotion: the parent's deployment process names the conductor's two steps."""

    enabled: bool = True
    plan_step: str = Field("Plan the release", min_length=1, description="where the conductor plans and notes")
    deploy_step: str = Field("Deploy the components", min_length=1, description="where it deploys the plan")
    what_if: bool = Field(False, description="plan and submit the notes, deploy nothing")
    deployment_timeout_seconds: int = Field(
        1800, ge=1, description="limit on a component deployment's running time; then it is canceled"
    )
    task_check_seconds: int = Field(30, ge=1, le=3600, description="read a component's task when no event came")
    create_grace_seconds: int = Field(180, ge=1, description="how long Octopus may still act on an unanswered POST")


class ScheduleRule(_Strict):
    """A promotion on a schedule: every component, from one environment to the next, at cron times."""

    name: str = Field(min_length=1, description="unique within the orchestration; names its runs")
    cron: str = Field(min_length=1, description="five-field cron, in `timezone`, e.g. '0 12,19 * * *'")
    timezone: str = Field("UTC", min_length=1, description="an IANA time zone, e.g. Europe/London")
    source: str | None = Field(None, alias="from", min_length=1, description="promote from here")
    to: str = Field(min_length=1, description="the destination environment")
    tenant: str | None = Field(None, min_length=1)
    what_if: bool = False
    grace_seconds: int = Field(
        3600, ge=0, le=7 * 24 * 3600, description="a run missed by at most this long is run once, late"
    )

    @field_validator("cron")
    @classmethod
    def _readable_cron(cls, cron: str) -> str:
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise ValueError(f"{cron!r} is not a five-field cron expression, e.g. '0 12,19 * * *'")
        return cron

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{zone!r} is not an IANA time zone, e.g. Europe/London") from None
        return zone


NotifyKind = Literal["promotion", "redeploy"]
NotifyOutcome = Literal["succeeded", "failed"]


class _NotifyWhen(_Strict):
    """Which plan ends a destination hears of: by the plan's kind and outcome (default: every end)."""

    kinds: tuple[NotifyKind, ...] = ("promotion", "redeploy")
    outcomes: tuple[NotifyOutcome, ...] = ("succeeded", "failed")

    @field_validator("kinds", "outcomes")
    @classmethod
    def _not_empty(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError("list at least one, or leave the field out for all")
        return values

    def wants(self, kind: str, outcome: str) -> bool:
        return kind in self.kinds and outcome in self.outcomes


class WebhookReceiver(_NotifyWhen):
    """An HTTP(S) receiver of the plan-end summary as JSON, signed per Standard Webhooks."""

    url: str = Field(min_length=1, description="http(s) URL the summary is POSTed to")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL with a host, e.g. https://hooks.example.com/releases")
        if parts.username or parts.password:
            raise ValueError("a receiver URL must not carry credentials: the signature authenticates the sender")
        if parts.fragment:
            raise ValueError("a receiver URL has no #fragment")
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise ValueError(f"{url!r} has a port that is not a number from 0 to 65535") from None
        return url.strip()


class EmailNotice(_NotifyWhen):
    """Recipients of the plan-end summary as plain text, sent through the SMTP server of the settings."""

    to: tuple[NameEmail, ...] = Field(description="addresses, e.g. ops@example.com or 'Ops <o@x.io>'")

    @field_validator("to")
    @classmethod
    def _someone(cls, to: tuple[NameEmail, ...]) -> tuple[NameEmail, ...]:
        if not to:
            raise ValueError("list at least one address")
        return to


class NotifyRule(_Strict):
    """Who hears of a plan's end: webhook receivers and email recipients."""

    webhooks: tuple[WebhookReceiver, ...] = ()
    email: EmailNotice | None = None

    @field_validator("webhooks")
    @classmethod
    def _each_url_once(cls, webhooks: tuple[WebhookReceiver, ...]) -> tuple[WebhookReceiver, ...]:
        urls = [receiver.url for receiver in webhooks]
        twice = sorted({url for url in urls if urls.count(url) > 1})
        if twice:
            raise ValueError(f"webhook URLs must be listed once: {', '.join(twice)}")
        return webhooks


class Orchestration(_Strict):
    name: str = Field(min_length=1)
    space: str = Field("Default", min_length=1)
    parent_project: str | None = Field(None, min_length=1)
    components: tuple[ComponentRule, ...]
    release_pattern: str | None = Field(None, min_length=1, description="the pattern of components that set none")
    source_environment: str | None = Field(
        None, min_length=1, description="promote from this environment; default: computed from the lifecycle"
    )
    stuck_after_seconds: int | None = Field(
        None,
        ge=1,
        description="report any deployment of the components (whoever made it) whose running time passes this",
    )
    cancel_stuck: bool = Field(False, description="also cancel such a deployment, with a note saying why")
    redeploy: RedeployRule = RedeployRule()
    approvals: ApprovalRule = ApprovalRule()
    promotion: PromotionRule = PromotionRule()
    schedules: tuple[ScheduleRule, ...] = ()
    on_failure: Literal["stop", "continue", "rollback"] | None = Field(
        None,
        description="what a failed component does to the ones after it (rollback: stop, and redeploy what the "
        "promotion deployed with the releases they replaced); redeploy.stop_on_failure is its alias",
    )
    notify: NotifyRule = Field(default_factory=NotifyRule, description="who hears of a plan's end")

    @property
    def stops_on_failure(self) -> bool:
        """`on_failure`, else the older `redeploy.stop_on_failure` (default: stop). A rollback stops too."""
        if self.on_failure is not None:
            return self.on_failure in ("stop", "rollback")
        return self.redeploy.stop_on_failure

    @property
    def rolls_back(self) -> bool:
        """A promotion's failed component rolls back what it deployed before (a redeploy has nothing to roll back)."""
        return self.on_failure == "rollback"

    @property
    def promotes(self) -> bool:
        return self.promotion.enabled and self.parent_project is not None

    @field_validator("schedules")
    @classmethod
    def _schedule_names_unique(cls, schedules: tuple[ScheduleRule, ...]) -> tuple[ScheduleRule, ...]:
        names = [item.name for item in schedules]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"schedule names must be unique: {', '.join(twice)}")
        return schedules

    @field_validator("components")
    @classmethod
    def _each_project_once(cls, components: tuple[ComponentRule, ...]) -> tuple[ComponentRule, ...]:
        if not components:
            raise ValueError("list at least one component")
        seen: set[str] = set()
        for component in components:
            if component.project.lower() in seen:
                raise ValueError(f"project {component.project!r} is listed twice")
            seen.add(component.project.lower())
        return components

    @field_validator("release_pattern")
    @classmethod
    def _readable_pattern(cls, pattern: str | None) -> str | None:
        return _checked_pattern(pattern)

    def space_of(self, component: ComponentRule) -> str:
        """The space (name or Spaces-<n>) the component lives in: its own, else the orchestration's."""
        return component.space or self.space

    def spaces(self) -> list[str]:
        """Every space the orchestration acts in (names or Spaces-<n>), the orchestration's first."""
        return list(dict.fromkeys([self.space, *(self.space_of(component) for component in self.components)]))

    def release_pattern_for(self, component: ComponentRule) -> str | None:
        """The component's pattern (or template), else the orchestration's; None: every version."""
        return component.release_pattern or self.release_pattern

    @model_validator(mode="after")
    def _cancel_needs_a_limit(self) -> Orchestration:
        if self.cancel_stuck and self.stuck_after_seconds is None:
            raise ValueError("cancel_stuck is true but stuck_after_seconds is not set")
        return self

    @model_validator(mode="after")
    def _approvals_need_a_parent(self) -> Orchestration:
        if self.approvals.enabled and self.parent_project is None:
            raise ValueError("approvals are enabled but parent_project is not set")
        return self


class ExclusionGroupRule(_Strict):
    """Projects (of any orchestration, deployed by anyone) that must not deploy to the same environment at once."""

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
        description="unique; letters, digits, spaces, '.', '_' and '-'",
    )
    space: str = Field("Default", min_length=1)
    projects: tuple[str, ...] = Field(description="Octopus project names, at least two")

    @field_validator("projects")
    @classmethod
    def _two_projects_once_each(cls, projects: tuple[str, ...]) -> tuple[str, ...]:
        if any(not project.strip() for project in projects):
            raise ValueError("a project name is empty")
        folded = [project.casefold() for project in projects]
        twice = sorted({project for project in projects if folded.count(project.casefold()) > 1})
        if twice:
            raise ValueError(f"project {twice[0]!r} is listed twice")
        if len(projects) < 2:
            raise ValueError("list at least two projects: a group of one excludes nothing")
        return projects


class Rules(_Strict):
    orchestrations: tuple[Orchestration, ...]
    exclusion_groups: tuple[ExclusionGroupRule, ...] = ()

    @field_validator("exclusion_groups")
    @classmethod
    def _group_names_unique(cls, groups: tuple[ExclusionGroupRule, ...]) -> tuple[ExclusionGroupRule, ...]:
        names = [group.name.casefold() for group in groups]
        twice = sorted({group.name for group in groups if names.count(group.name.casefold()) > 1})
        if twice:
            raise ValueError(f"exclusion group names must be unique: {', '.join(twice)}")
        return groups

    @field_validator("orchestrations")
    @classmethod
    def _names_unique(cls, orchestrations: tuple[Orchestration, ...]) -> tuple[Orchestration, ...]:
        if not orchestrations:
            raise ValueError("list at least one orchestration")
        names = [item.name for item in orchestrations]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"orchestration names must be unique: {', '.join(duplicates)}")
        return orchestrations

    def trigger_categories(self) -> frozenset[str]:
        return frozenset(
            category
            for item in self.orchestrations
            if item.redeploy.enabled
            for category in item.redeploy.trigger_categories
        )


def _checked_pattern(pattern: str | None) -> str | None:
    if pattern is not None:
        check_template(pattern)
    return pattern


class RulesError(ValueError):
    """The rules file cannot be used; `problems` holds one line per problem, with its place."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))
        self.problems = problems


def load_rules(path: Path) -> Rules:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RulesError(str(path), [f"{path}: cannot read: {error.strerror}"]) from None
    return parse_rules(text, source=str(path))


def parse_rules(text: str, *, source: str = "<rules>") -> Rules:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise RulesError(source, [f"{where}: not valid YAML: {getattr(error, 'problem', error)}"]) from None
    if node is None:
        raise RulesError(source, [f"{source}:1: the file is empty; it needs an 'orchestrations' list"])
    try:
        return Rules.model_validate(data)
    except ValidationError as error:
        problems = []
        for problem in error.errors(include_url=False, include_input=False):
            location = tuple(problem["loc"])
            line = _line_of(node, location)
            field = _dotted(location) or "(top level)"
            hint = did_you_mean(Rules, location) if problem["type"] == "extra_forbidden" else ""
            problems.append(f"{source}:{line}: {field}: {problem['msg']}{hint}")
        raise RulesError(source, problems) from None


def line_of(text: str, location: tuple[Any, ...]) -> int:
    """The line of the field at `location` (or of its nearest existing parent) in a rules file's text."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return 1 if node is None else _line_of(node, location)


def dotted(location: tuple[Any, ...]) -> str:
    return _dotted(location)


def _dotted(location: tuple[Any, ...]) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node, location: tuple[Any, ...]) -> int:
    """The line of the deepest YAML node on `location` that exists (1-based)."""
    current = node
    for part in location:
        child = _child(current, part)
        if child is None:
            break
        current = child
    return current.start_mark.line + 1


def _child(node: yaml.Node, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value  # type: ignore[no-any-return]
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None
