"""The seeds: `empty` (a space, an administrator) and `sample`, the application of the release
management story (Database, Web API, Scheduling Service, Web UI and a Release Orchestration project).

The sample history is made by driving the real deployment code on a fake clock that starts 90 days ago,
so tasks, interruptions, events and progression are exactly what the API would have produced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from simulator.accounts import add_api_key, create_space, create_team, create_user
from simulator.build_information import push_build_information
from simulator.deploying import create_deployment
from simulator.infrastructure import create_environment, create_machine, create_tenant, update_tenant
from simulator.interruptions import record_submission, take_responsibility, validate_submission
from simulator.permissions import ADMIN_TEAM_ID
from simulator.projects import (
    create_channel,
    create_lifecycle,
    create_project,
    create_project_group,
    create_release,
    update_process,
)
from simulator.store import ClockSettings, Doc, StepFailure, Store
from simulator.tag_sets import create_tag_set
from simulator.task_clock import advance, interruption_submitted
from simulator.timeutil import utc_now
from simulator.variables import update_variable_set

SPACE_ID = "Spaces-1"
SPACE_NAME = "Default"

# Users and their API keys (sample seed; the empty seed has only the administrator).
ADMIN_USER_ID = "Users-1"
ADMIN_USERNAME = "admin"
ADMIN_API_KEY = "API-SIMADMINISTRATOR0000000001"
CONDUCTOR_USER_ID = "Users-2"
CONDUCTOR_USERNAME = "release.conductor"
CONDUCTOR_DISPLAY_NAME = "Release Conductor"
CONDUCTOR_API_KEY = "API-SIMRELEASECONDUCTOR0000002"
QA_USER_ID = "Users-3"
QA_USERNAME = "qa.tester"
QA_API_KEY = "API-SIMQATESTER000000000000003"
WEB_ADMIN_USER_ID = "Users-4"
WEB_ADMIN_USERNAME = "web.admin"
WEB_ADMIN_API_KEY = "API-SIMWEBADMIN00000000000004"
BUSINESS_OWNER_USER_ID = "Users-5"
BUSINESS_OWNER_USERNAME = "business.owner"
BUSINESS_OWNER_API_KEY = "API-SIMBUSINESSOWNER000000005"
DBA_USER_ID = "Users-6"
DBA_USERNAME = "db.admin"
DBA_API_KEY = "API-SIMDBADMIN000000000000006"
VIEWER_USER_ID = "Users-7"
VIEWER_USERNAME = "viewer"
VIEWER_API_KEY = "API-SIMVIEWER0000000000000007"

# Teams.
ADMIN_TEAM = ADMIN_TEAM_ID
QA_TEAM_ID = "Teams-1"
WEB_ADMINS_TEAM_ID = "Teams-2"
BUSINESS_OWNERS_TEAM_ID = "Teams-3"
DBAS_TEAM_ID = "Teams-4"
RELEASE_MANAGEMENT_TEAM_ID = "Teams-5"
TEAM_NAMES = {
    QA_TEAM_ID: "QA",
    WEB_ADMINS_TEAM_ID: "Web Admins",
    BUSINESS_OWNERS_TEAM_ID: "Business Owners",
    DBAS_TEAM_ID: "DBAs",
    RELEASE_MANAGEMENT_TEAM_ID: "Release Management",
}

# Environments, lifecycles, project groups.
DEVELOPMENT_ID = "Environments-1"
TEST_ID = "Environments-2"
STAGING_ID = "Environments-3"
PRODUCTION_ID = "Environments-4"
DEFAULT_LIFECYCLE_ID = "Lifecycles-1"
ORCHESTRATION_LIFECYCLE_ID = "Lifecycles-2"
DEFAULT_PROJECT_GROUP_ID = "ProjectGroups-1"
SAMPLE_PROJECT_GROUP_ID = "ProjectGroups-2"

# Projects (in deployment order), their default channels and target roles.
DATABASE_ID = "Projects-1"
WEB_API_ID = "Projects-2"
SCHEDULING_SERVICE_ID = "Projects-3"
WEB_UI_ID = "Projects-4"
ORCHESTRATION_ID = "Projects-5"
COMPONENT_ORDER = [DATABASE_ID, WEB_API_ID, SCHEDULING_SERVICE_ID, WEB_UI_ID]
DB_ROLE = "db-server"
WEB_ROLE = "web-server"
APP_ROLE = "app-server"

# Tenants (connected to Scheduling Service in Staging and Production).
CONTOSO_ID = "Tenants-1"
FABRIKAM_ID = "Tenants-2"

# Tenant tags: Contoso pays for dedicated hosting, Fabrikam is on the shared plan.
HOSTING_TAG_SET_ID = "TagSets-1"
HOSTING_TAG_SET_NAME = "Hosting"
SHARED_TAG_ID = "TagSets-1/Tags-1"
SHARED_TAG = "Hosting/Shared"
DEDICATED_TAG_ID = "TagSets-1/Tags-2"
DEDICATED_TAG = "Hosting/Dedicated"
TENANT_TAGS = {CONTOSO_ID: [DEDICATED_TAG], FABRIKAM_ID: [SHARED_TAG]}

# The 2021.3.0 cycle (added after everything above, so no earlier id changed).
# Database's "Hotfix" channel: Development -> Test (an optional phase) -> Staging -> Production.
HOTFIX_LIFECYCLE_ID = "Lifecycles-3"
DATABASE_HOTFIX_CHANNEL_ID = "Channels-6"
DATABASE_HOTFIX_RELEASE_ID = "Releases-12"  # Database 2021.2.1.1 (Hotfix), in Development only
DATABASE_HOTFIX_VERSION = "2021.2.1.1"
CYCLE_2021_3_VERSION = "2021.3.0.1"
DATABASE_2021_3_RELEASE_ID = "Releases-13"  # 2021.3.0.1, in Development and Test
WEB_API_2021_3_0_1_RELEASE_ID = "Releases-14"  # 2021.3.0.1, in Development and Test (then replaced)
WEB_UI_2021_3_RELEASE_ID = "Releases-15"  # 2021.3.0.1, in Development and Test
WEB_API_2021_3_RELEASE_ID = "Releases-16"  # 2021.3.0.2, in Development and Test
WEB_API_2021_3_VERSION = "2021.3.0.2"
ORCHESTRATION_2021_3_RELEASE_ID = "Releases-17"  # 2021.3.0.1, not deployed
# The cycle's deployments (all succeeded), by (release, environment).
CYCLE_2021_3_DEPLOYMENT_IDS = {
    (DATABASE_HOTFIX_RELEASE_ID, DEVELOPMENT_ID): "Deployments-38",
    (DATABASE_2021_3_RELEASE_ID, DEVELOPMENT_ID): "Deployments-39",
    (WEB_API_2021_3_0_1_RELEASE_ID, DEVELOPMENT_ID): "Deployments-40",
    (WEB_UI_2021_3_RELEASE_ID, DEVELOPMENT_ID): "Deployments-41",
    (DATABASE_2021_3_RELEASE_ID, TEST_ID): "Deployments-42",
    (WEB_API_2021_3_0_1_RELEASE_ID, TEST_ID): "Deployments-43",
    (WEB_UI_2021_3_RELEASE_ID, TEST_ID): "Deployments-44",
    (WEB_API_2021_3_RELEASE_ID, DEVELOPMENT_ID): "Deployments-45",
    (WEB_API_2021_3_RELEASE_ID, TEST_ID): "Deployments-46",
}
# Build information of Web API's package, pushed before its 2021.3.0.x releases were created.
WEB_API_PACKAGE_ID = "Sample.WebApi"
WEB_API_2021_3_0_1_BUILD_INFORMATION_ID = "BuildInformation-1"
WEB_API_2021_3_BUILD_INFORMATION_ID = "BuildInformation-2"
# Prompted variables (not required): a change request number for Web API (Staging, Production) and
# for Release Orchestration, with the same name so it can be passed through by name.
CHANGE_REQUEST_VARIABLE_NAME = "ChangeRequest"
WEB_API_CHANGE_REQUEST_VARIABLE_ID = "5d6a1c3e-2f1b-4c59-9a43-7d1e0b6f2a01"
ORCHESTRATION_CHANGE_REQUEST_VARIABLE_ID = "5d6a1c3e-2f1b-4c59-9a43-7d1e0b6f2a05"

# A second space, the Payments team's own (added after everything above, so no earlier id changed). Its
# environments have the Default space's names and ids of their own. Payments Service's "Security approval"
# belongs to Security, a system team (`SpaceId: null`) that also owns the "Security approval" of Payments
# Orchestration, the parent in the Default space; the conductor's service account is in Payments Release
# Management, a team of the Payments space. Payments Developers is a team of that space only.
PAYMENTS_SPACE_ID = "Spaces-2"
PAYMENTS_SPACE_NAME = "Payments"
SECURITY_USER_ID = "Users-8"
SECURITY_USERNAME = "security.officer"
SECURITY_API_KEY = "API-SIMSECURITYOFFICER0000008"
PAYMENTS_DEVELOPER_USER_ID = "Users-9"
PAYMENTS_DEVELOPER_USERNAME = "payments.dev"
PAYMENTS_DEVELOPER_API_KEY = "API-SIMPAYMENTSDEV00000000009"
SECURITY_TEAM_ID = "Teams-6"  # a system team
PAYMENTS_RELEASE_MANAGEMENT_TEAM_ID = "Teams-7"
PAYMENTS_DEVELOPERS_TEAM_ID = "Teams-8"
PAYMENTS_DEVELOPMENT_ID = "Environments-5"
PAYMENTS_TEST_ID = "Environments-6"
PAYMENTS_STAGING_ID = "Environments-7"
PAYMENTS_PRODUCTION_ID = "Environments-8"
PAYMENTS_LIFECYCLE_ID = "Lifecycles-4"
PAYMENTS_PROJECT_GROUP_ID = "ProjectGroups-3"
PAYMENTS_SERVICE_ID = "Projects-6"  # in the Payments space
PAYMENTS_ORCHESTRATION_ID = "Projects-7"  # in the Default space
PAYMENTS_ROLE = "payments-server"
PAYMENTS_VERSION = "2021.3.0.1"
PAYMENTS_SERVICE_RELEASE_ID = "Releases-18"  # in the Payments space's Development and Test


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _base(store: Store) -> None:
    create_space(store, {"Name": SPACE_NAME, "Description": "The default space", "IsDefault": True})
    admin = create_user(
        store,
        {"Username": ADMIN_USERNAME, "DisplayName": "Octopus Administrator", "EmailAddress": "admin@example.test"},
    )
    add_api_key(store, admin["Id"], "Simulator administrator", ADMIN_API_KEY)
    create_team(
        store,
        {
            "Name": "Octopus Administrators",
            "MemberUserIds": [admin["Id"]],
            "Description": "Administrators of this instance",
        },
        space_id=None,
        team_id=ADMIN_TEAM_ID,
    )


def build_store(seed: str, settings: ClockSettings) -> Store:
    if seed not in ("sample", "empty"):
        raise ValueError(f"unknown seed {seed!r}: use 'sample' or 'empty'")
    clock = FakeClock(utc_now() - timedelta(days=90))
    store = Store(clock=clock, settings=ClockSettings(queue_delay=4, step_duration=25, health_check_delay=3))
    _base(store)
    admin = store.users[ADMIN_USER_ID]
    if seed == "empty":
        create_project_group(store, SPACE_ID, {"Name": "Default Project Group"}, admin)
        create_lifecycle(store, SPACE_ID, {"Name": "Default Lifecycle", "Phases": []}, admin)
    else:
        _SampleBuilder(store, clock).build()
    store.clock = utc_now
    store.settings = settings
    return store


def _manual(name: str, teams: list[str], instructions: str, environments: list[str]) -> Doc:
    return {
        "Name": name,
        "Properties": {},
        "Actions": [
            {
                "Name": name,
                "ActionType": "Octopus.Manual",
                "Environments": environments,
                "Properties": {
                    "Octopus.Action.Manual.Instructions": instructions,
                    "Octopus.Action.Manual.ResponsibleTeamIds": ",".join(teams),
                    "Octopus.Action.Manual.BlockConcurrentDeployments": "False",
                    "Octopus.Action.RunOnServer": "true",
                },
            }
        ],
    }


def _deploy_step(name: str, role: str, package: str) -> Doc:
    return {
        "Name": name,
        "Properties": {"Octopus.Action.TargetRoles": role},
        "Actions": [
            {
                "Name": name,
                "ActionType": "Octopus.TentaclePackage",
                "Properties": {
                    "Octopus.Action.Package.PackageId": package,
                    "Octopus.Action.Package.FeedId": "feeds-builtin",
                },
                "Packages": [
                    {"Name": "", "PackageId": package, "FeedId": "feeds-builtin", "AcquisitionLocation": "Server"}
                ],
            }
        ],
    }


def _phase(name: str, environment_id: str, automatic: bool = False) -> Doc:
    return {
        "Name": name,
        "AutomaticDeploymentTargets": [environment_id] if automatic else [],
        "OptionalDeploymentTargets": [] if automatic else [environment_id],
    }


class _SampleBuilder:
    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.admin = store.users[ADMIN_USER_ID]

    def build(self) -> None:
        self._people()
        self._environments()
        self._projects()
        self._tenants_and_machines()
        self._history()
        # Added after the history, so that every id the history made stays what it was.
        self._tenant_tags()
        self._cycle_2021_3()
        self._payments_space()

    def _people(self) -> None:
        store = self.store
        people = [
            (CONDUCTOR_USERNAME, CONDUCTOR_DISPLAY_NAME, True, CONDUCTOR_API_KEY),
            (QA_USERNAME, "QA Tester", False, QA_API_KEY),
            (WEB_ADMIN_USERNAME, "Web Admin", False, WEB_ADMIN_API_KEY),
            (BUSINESS_OWNER_USERNAME, "Business Owner", False, BUSINESS_OWNER_API_KEY),
            (DBA_USERNAME, "Database Administrator", False, DBA_API_KEY),
            (VIEWER_USERNAME, "Read-only Viewer", False, VIEWER_API_KEY),
        ]
        for username, display, service, key in people:
            user = create_user(
                store,
                {
                    "Username": username,
                    "DisplayName": display,
                    "IsService": service,
                    "EmailAddress": f"{username}@example.test",
                },
            )
            add_api_key(store, user["Id"], "Sample seed", key)
        members = {
            QA_TEAM_ID: [QA_USER_ID],
            WEB_ADMINS_TEAM_ID: [WEB_ADMIN_USER_ID],
            BUSINESS_OWNERS_TEAM_ID: [BUSINESS_OWNER_USER_ID],
            DBAS_TEAM_ID: [DBA_USER_ID],
            RELEASE_MANAGEMENT_TEAM_ID: [CONDUCTOR_USER_ID],
        }
        for team_id, name in TEAM_NAMES.items():
            create_team(store, {"Name": name, "MemberUserIds": members[team_id]}, space_id=SPACE_ID, team_id=team_id)
            store.counters["Teams"] = int(team_id.split("-")[1])

    def _environments(self) -> None:
        for order, name in enumerate(["Development", "Test", "Staging", "Production"]):
            create_environment(self.store, SPACE_ID, {"Name": name, "SortOrder": order}, self.admin)
        create_lifecycle(
            self.store,
            SPACE_ID,
            {
                "Name": "Default Lifecycle",
                "Phases": [
                    _phase("Development", DEVELOPMENT_ID, automatic=True),
                    _phase("Test", TEST_ID),
                    _phase("Staging", STAGING_ID),
                    _phase("Production", PRODUCTION_ID),
                ],
            },
            self.admin,
        )
        create_lifecycle(
            self.store,
            SPACE_ID,
            {
                "Name": "Release Orchestration",
                "Phases": [_phase("Staging", STAGING_ID), _phase("Production", PRODUCTION_ID)],
            },
            self.admin,
        )

    def _projects(self) -> None:
        store = self.store
        create_project_group(store, SPACE_ID, {"Name": "Default Project Group"}, self.admin)
        create_project_group(
            store, SPACE_ID, {"Name": "Sample Application", "Description": "The release management sample"}, self.admin
        )
        qa = [QA_TEAM_ID, RELEASE_MANAGEMENT_TEAM_ID]
        web = [WEB_ADMINS_TEAM_ID, RELEASE_MANAGEMENT_TEAM_ID]
        dba = [DBAS_TEAM_ID, RELEASE_MANAGEMENT_TEAM_ID]
        prod = [PRODUCTION_ID]
        components = [
            (
                "Database",
                "Untenanted",
                [
                    _manual("QA approval", qa, "Confirm QA has signed off the database changes.", prod),
                    _manual("DBA approval", dba, "Confirm the database backup has completed.", prod),
                    _deploy_step("Deploy Database", DB_ROLE, "Sample.Database"),
                ],
            ),
            (
                "Web API",
                "Untenanted",
                [
                    _manual("QA approval", qa, "Confirm QA has signed off the Web API.", prod),
                    _manual("Web Admins approval", web, "Confirm the web farm is ready.", prod),
                    _deploy_step("Deploy Web API", WEB_ROLE, "Sample.WebApi"),
                ],
            ),
            (
                "Scheduling Service",
                "TenantedOrUntenanted",
                [
                    _manual("QA approval", qa, "Confirm QA has signed off the scheduling service.", prod),
                    _deploy_step("Deploy Scheduling Service", APP_ROLE, "Sample.SchedulingService"),
                ],
            ),
            (
                "Web UI",
                "Untenanted",
                [
                    _manual("QA approval", qa, "Confirm QA has signed off the Web UI.", prod),
                    _manual("Web Admins approval", web, "Confirm the web farm is ready.", prod),
                    _deploy_step("Deploy Web UI", WEB_ROLE, "Sample.WebUI"),
                ],
            ),
        ]
        for name, mode, steps in components:
            project = create_project(
                store,
                SPACE_ID,
                {
                    "Name": name,
                    "ProjectGroupId": SAMPLE_PROJECT_GROUP_ID,
                    "LifecycleId": DEFAULT_LIFECYCLE_ID,
                    "TenantedDeploymentMode": mode,
                    "Description": f"The {name} component of the sample application.",
                },
                self.admin,
            )
            update_process(store, store.processes[project["DeploymentProcessId"]], {"Steps": steps})
        orchestration = create_project(
            store,
            SPACE_ID,
            {
                "Name": "Release Orchestration",
                "ProjectGroupId": SAMPLE_PROJECT_GROUP_ID,
                "LifecycleId": ORCHESTRATION_LIFECYCLE_ID,
                "Description": "Coordinates the release of every component and gathers the approvals once.",
            },
            self.admin,
        )
        approval_steps = [
            _manual("QA approval", [QA_TEAM_ID], "QA signs off the release.", prod),
            _manual("Web Admins approval", [WEB_ADMINS_TEAM_ID], "The web admins sign off the release.", prod),
            _manual(
                "Business Owners approval", [BUSINESS_OWNERS_TEAM_ID], "The business owners sign off the release.", prod
            ),
        ]
        approval_steps[1]["StartTrigger"] = "StartWithPrevious"
        approval_steps[2]["StartTrigger"] = "StartWithPrevious"
        # Release Conductor's two steps around the people's approvals (built-in steps only, no script).
        conductor = [RELEASE_MANAGEMENT_TEAM_ID]
        plan = _manual("Plan the release", conductor, "Release Conductor plans the release and its notes.", [])
        deploy = _manual("Deploy the components", conductor, "Release Conductor deploys the components.", [])
        update_process(
            store, store.processes[orchestration["DeploymentProcessId"]], {"Steps": [plan, *approval_steps, deploy]}
        )

    def _tenants_and_machines(self) -> None:
        store = self.store
        for name in ("Contoso", "Fabrikam"):
            create_tenant(
                store,
                SPACE_ID,
                {"Name": name, "ProjectEnvironments": {SCHEDULING_SERVICE_ID: [STAGING_ID, PRODUCTION_ID]}},
                self.admin,
            )
        machines: list[Doc] = [
            {"Name": "dev-db-01", "EnvironmentIds": [DEVELOPMENT_ID], "Roles": [DB_ROLE]},
            {"Name": "dev-web-01", "EnvironmentIds": [DEVELOPMENT_ID], "Roles": [WEB_ROLE]},
            {"Name": "dev-app-01", "EnvironmentIds": [DEVELOPMENT_ID], "Roles": [APP_ROLE]},
            {"Name": "test-db-01", "EnvironmentIds": [TEST_ID], "Roles": [DB_ROLE]},
            {"Name": "test-web-01", "EnvironmentIds": [TEST_ID], "Roles": [WEB_ROLE]},
            {"Name": "test-app-01", "EnvironmentIds": [TEST_ID], "Roles": [APP_ROLE]},
            {"Name": "stg-db-01", "EnvironmentIds": [STAGING_ID], "Roles": [DB_ROLE]},
            {"Name": "stg-web-01", "EnvironmentIds": [STAGING_ID], "Roles": [WEB_ROLE]},
            {
                "Name": "stg-app-01",
                "EnvironmentIds": [STAGING_ID],
                "Roles": [APP_ROLE],
                "TenantedDeploymentParticipation": "TenantedOrUntenanted",
                "TenantIds": [CONTOSO_ID, FABRIKAM_ID],
            },
            {"Name": "prod-db-01", "EnvironmentIds": [PRODUCTION_ID], "Roles": [DB_ROLE]},
            {"Name": "prod-web-01", "EnvironmentIds": [PRODUCTION_ID], "Roles": [WEB_ROLE]},
            {"Name": "prod-web-02", "EnvironmentIds": [PRODUCTION_ID], "Roles": [WEB_ROLE]},
            {
                "Name": "prod-app-contoso-01",
                "EnvironmentIds": [PRODUCTION_ID],
                "Roles": [APP_ROLE],
                "TenantedDeploymentParticipation": "Tenanted",
                "TenantIds": [CONTOSO_ID],
            },
            {
                "Name": "prod-app-fabrikam-01",
                "EnvironmentIds": [PRODUCTION_ID],
                "Roles": [APP_ROLE],
                "TenantedDeploymentParticipation": "Tenanted",
                "TenantIds": [FABRIKAM_ID],
            },
        ]
        for machine in machines:
            machine["Endpoint"] = {
                "CommunicationStyle": "TentaclePassive",
                "Uri": f"https://{machine['Name']}.example.test:10933/",
                "Thumbprint": machine["Name"].upper().replace("-", "")[:16].ljust(40, "0"),
            }
            create_machine(store, SPACE_ID, machine, self.admin)
        self._settle()

    def _tenant_tags(self) -> None:
        create_tag_set(
            self.store,
            SPACE_ID,
            {
                "Name": HOSTING_TAG_SET_NAME,
                "Description": "How a tenant's servers are hosted.",
                "Tags": [
                    {"Name": "Shared", "Color": "#87BFEC", "Description": "Servers shared with other tenants."},
                    {"Name": "Dedicated", "Color": "#5ECD9E", "Description": "Servers of the tenant's own."},
                ],
            },
            self.admin,
        )
        for tenant_id, tags in TENANT_TAGS.items():
            update_tenant(self.store, self.store.tenants[tenant_id], {"TenantTags": tags})

    # --- history ---------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Run the task clock on the fake clock until every task finished or waits on a person."""
        while True:
            due = advance(self.store)
            if due is None:
                return
            self.clock.now = max(self.clock.now, due)

    def _release(
        self,
        project_id: str,
        version: str,
        notes: str | None = None,
        channel_id: str | None = None,
        space_id: str = SPACE_ID,
    ) -> str:
        body: Doc = {"ProjectId": project_id, "Version": version, "ReleaseNotes": notes or f"Release {version}"}
        if channel_id:
            body["ChannelId"] = channel_id
        release = create_release(self.store, space_id, body, self.admin)
        return str(release["Id"])

    def _deploy(
        self,
        project_id: str,
        version: str,
        environment_id: str,
        *,
        tenant_id: str | None = None,
        approvals: dict[str, tuple[str, str]] | None = None,
        fail_step: str | None = None,
        space_id: str = SPACE_ID,
    ) -> None:
        """Deploy, answer each manual intervention as the given (user, note), and let the task finish."""
        store = self.store
        release_id = store.release_versions[(project_id, version)]
        if fail_step:
            store.step_failures.append(
                StepFailure(
                    id="seed",
                    project_id=project_id,
                    step_name=fail_step,
                    environment_id=environment_id,
                    remaining=1,
                    error_message="The remote script failed with exit code 1.",
                )
            )
        body: Doc = {"ReleaseId": release_id, "EnvironmentId": environment_id}
        if tenant_id:
            body["TenantId"] = tenant_id
        deployment = create_deployment(store, space_id, body, self.admin)
        while True:
            self._settle()
            run = store.task_runs[deployment["TaskId"]]
            if not run.pending:
                break
            for interruption_id in sorted(run.pending):
                interruption = store.interruptions[interruption_id]
                user_id, note = (approvals or {})[interruption["Title"]]
                user = store.users[user_id]
                self.clock.tick(600)
                take_responsibility(store, interruption, user)
                values = validate_submission(store, interruption, user, {"Notes": note, "Result": "Proceed"})
                record_submission(store, interruption, user, values)
                interruption_submitted(store, interruption, values, user)
        store.step_failures = [r for r in store.step_failures if r.id != "seed"]
        self.clock.tick(3600)

    def _history(self) -> None:
        by = {
            "QA approval": (QA_USER_ID, "Regression suite passed."),
            "Web Admins approval": (WEB_ADMIN_USER_ID, "Web farm ready."),
            "DBA approval": (DBA_USER_ID, "Backup verified."),
            "Business Owners approval": (BUSINESS_OWNER_USER_ID, "Approved for release."),
        }
        # The conductor's own steps of the orchestration's process, answered by its service account.
        conducted = {
            "Plan the release": (CONDUCTOR_USER_ID, "Release Conductor planned the release."),
            "Deploy the components": (CONDUCTOR_USER_ID, "Release Conductor deployed the components."),
        }
        components = COMPONENT_ORDER
        # 2021.1.0.1 through every environment, promoted by the orchestration project.
        for project_id in components:
            self._release(project_id, "2021.1.0.1")
        for environment_id in (DEVELOPMENT_ID, TEST_ID):
            for project_id in components:
                self._deploy(project_id, "2021.1.0.1", environment_id)
            self.clock.tick(86400)
        self._release(ORCHESTRATION_ID, "2021.1.0.1")
        self._deploy(ORCHESTRATION_ID, "2021.1.0.1", STAGING_ID, approvals=conducted)
        for project_id in components:
            self._stage_or_prod(project_id, "2021.1.0.1", STAGING_ID, by)
        self.clock.tick(3 * 86400)
        self._deploy(ORCHESTRATION_ID, "2021.1.0.1", PRODUCTION_ID, approvals={**by, **conducted})
        # The people answered the components' steps themselves too: nothing in the history was relayed.
        for project_id in components:
            self._stage_or_prod(project_id, "2021.1.0.1", PRODUCTION_ID, by)
        self.clock.tick(10 * 86400)
        # 2021.1.0.2: a Web UI wording fix, deployed by people.
        self._release(WEB_UI_ID, "2021.1.0.2")
        for environment_id in (DEVELOPMENT_ID, TEST_ID, STAGING_ID, PRODUCTION_ID):
            self._deploy(WEB_UI_ID, "2021.1.0.2", environment_id, approvals=by)
        self.clock.tick(20 * 86400)
        # 2021.2.0.1: work in progress, with two failures.
        for project_id in components:
            self._release(project_id, "2021.2.0.1")
        self._release(ORCHESTRATION_ID, "2021.2.0.1")
        self._deploy(DATABASE_ID, "2021.2.0.1", DEVELOPMENT_ID)
        self._deploy(DATABASE_ID, "2021.2.0.1", TEST_ID)
        for environment_id in (DEVELOPMENT_ID, TEST_ID, STAGING_ID):
            self._deploy(WEB_API_ID, "2021.2.0.1", environment_id)
        self._deploy(WEB_API_ID, "2021.2.0.1", PRODUCTION_ID, approvals=by, fail_step="Deploy Web API")
        self._deploy(SCHEDULING_SERVICE_ID, "2021.2.0.1", DEVELOPMENT_ID)
        self._deploy(SCHEDULING_SERVICE_ID, "2021.2.0.1", TEST_ID)
        self._deploy(SCHEDULING_SERVICE_ID, "2021.2.0.1", STAGING_ID, tenant_id=CONTOSO_ID)
        self._deploy(SCHEDULING_SERVICE_ID, "2021.2.0.1", PRODUCTION_ID, tenant_id=CONTOSO_ID, approvals=by)
        self._deploy(WEB_UI_ID, "2021.2.0.1", DEVELOPMENT_ID)
        self._deploy(WEB_UI_ID, "2021.2.0.1", TEST_ID, fail_step="Deploy Web UI")
        self._deploy(ORCHESTRATION_ID, "2021.2.0.1", STAGING_ID, approvals=conducted)

    def _stage_or_prod(
        self, project_id: str, version: str, environment_id: str, approvals: dict[str, tuple[str, str]]
    ) -> None:
        if project_id == SCHEDULING_SERVICE_ID:
            for tenant_id in (CONTOSO_ID, FABRIKAM_ID):
                self._deploy(project_id, version, environment_id, tenant_id=tenant_id, approvals=approvals)
        else:
            self._deploy(project_id, version, environment_id, approvals=approvals)

    # --- the 2021.3.0 cycle --------------------------------------------------------------------

    def _cycle_2021_3(self) -> None:
        store = self.store
        self.clock.tick(20 * 86400)
        self._prompted_variables()
        create_lifecycle(
            store,
            SPACE_ID,
            {
                "Name": "Hotfix",
                "Description": "Straight from Development to Staging when needed: Test is optional.",
                "Phases": [
                    _phase("Development", DEVELOPMENT_ID, automatic=True),
                    {**_phase("Test", TEST_ID), "IsOptionalPhase": True},
                    _phase("Staging", STAGING_ID),
                    _phase("Production", PRODUCTION_ID),
                ],
            },
            self.admin,
        )
        create_channel(
            store,
            SPACE_ID,
            {"Name": "Hotfix", "ProjectId": DATABASE_ID, "LifecycleId": HOTFIX_LIFECYCLE_ID},
            self.admin,
        )
        hotfix_notes = "Hotfix: the missing index on orders."
        self._release(DATABASE_ID, DATABASE_HOTFIX_VERSION, hotfix_notes, DATABASE_HOTFIX_CHANNEL_ID)
        self._deploy(DATABASE_ID, DATABASE_HOTFIX_VERSION, DEVELOPMENT_ID)
        self.clock.tick(7 * 86400)
        self._push_web_api_build(
            CYCLE_2021_3_VERSION,
            "412",
            commits=[("3f2a9c1d5b7e4a6f8c0d2e4b6a8c0e2f4a6b8c0d", "Add the orders endpoint")],
            work_items=[("SAMPLE-101", "Customers can list their orders")],
        )
        for project_id in (DATABASE_ID, WEB_API_ID, WEB_UI_ID):
            notes = "Orders: list endpoint." if project_id == WEB_API_ID else None
            self._release(project_id, CYCLE_2021_3_VERSION, notes)
        for environment_id in (DEVELOPMENT_ID, TEST_ID):
            for project_id in (DATABASE_ID, WEB_API_ID, WEB_UI_ID):
                self._deploy(project_id, CYCLE_2021_3_VERSION, environment_id)
        self.clock.tick(2 * 86400)
        self._push_web_api_build(
            WEB_API_2021_3_VERSION,
            "418",
            commits=[
                ("7b1e3d5f9a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b", "Page the orders list"),
                ("9c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c", "Fix the orders total for refunds"),
            ],
            work_items=[("SAMPLE-104", "Orders list is paged"), ("SAMPLE-107", "Refunded orders show a wrong total")],
        )
        self._release(WEB_API_ID, WEB_API_2021_3_VERSION, "Orders: paging, and the refund total fixed.")
        for environment_id in (DEVELOPMENT_ID, TEST_ID):
            self._deploy(WEB_API_ID, WEB_API_2021_3_VERSION, environment_id)
        self._release(ORCHESTRATION_ID, CYCLE_2021_3_VERSION, "The 2021.3.0 release of the sample application.")

    def _prompted_variables(self) -> None:
        prompts = [
            (WEB_API_ID, WEB_API_CHANGE_REQUEST_VARIABLE_ID, {"Environment": [STAGING_ID, PRODUCTION_ID]}),
            (ORCHESTRATION_ID, ORCHESTRATION_CHANGE_REQUEST_VARIABLE_ID, {}),
        ]
        for project_id, variable_id, scope in prompts:
            variable_set = self.store.variable_sets[self.store.projects[project_id]["VariableSetId"]]
            variable = {
                "Id": variable_id,
                "Name": CHANGE_REQUEST_VARIABLE_NAME,
                "Value": "",
                "Scope": scope,
                "Prompt": {
                    "Label": "Change request",
                    "Description": "The change request this deployment belongs to.",
                    "Required": False,
                    "DisplaySettings": {"Octopus.ControlType": "SingleLineText"},
                },
            }
            update_variable_set(self.store, variable_set, {"Variables": [variable]})

    def _push_web_api_build(
        self, version: str, build_number: str, *, commits: list[tuple[str, str]], work_items: list[tuple[str, str]]
    ) -> None:
        vcs_root = "https://git.example.test/sample/web-api"
        build = {
            "BuildEnvironment": "GitHub Actions",
            "BuildNumber": build_number,
            "BuildUrl": f"https://ci.example.test/sample/web-api/runs/{build_number}",
            "Branch": "main",
            "VcsType": "Git",
            "VcsRoot": vcs_root,
            "VcsCommitNumber": commits[-1][0],
            "VcsCommitUrl": f"{vcs_root}/commit/{commits[-1][0]}",
            "IssueTrackerId": "issuetracker-jira",
            "Commits": [{"Id": sha, "LinkUrl": f"{vcs_root}/commit/{sha}", "Comment": text} for sha, text in commits],
            "WorkItems": [
                {"Id": key, "LinkUrl": f"https://issues.example.test/browse/{key}", "Description": text}
                for key, text in work_items
            ],
        }
        body = {"PackageId": WEB_API_PACKAGE_ID, "Version": version, "OctopusBuildInformation": build}
        push_build_information(self.store, SPACE_ID, body, "FailIfExists", self.admin)

    # --- the Payments space ----------------------------------------------------------------------

    def _payments_space(self) -> None:
        store = self.store
        self.clock.tick(86400)
        create_space(store, {"Name": PAYMENTS_SPACE_NAME, "Description": "The Payments team's own space"})
        for username, display, key in (
            (SECURITY_USERNAME, "Security Officer", SECURITY_API_KEY),
            (PAYMENTS_DEVELOPER_USERNAME, "Payments Developer", PAYMENTS_DEVELOPER_API_KEY),
        ):
            user = create_user(
                store, {"Username": username, "DisplayName": display, "EmailAddress": f"{username}@example.test"}
            )
            add_api_key(store, user["Id"], "Sample seed", key)
        security = {"Name": "Security", "MemberUserIds": [SECURITY_USER_ID], "Description": "Every space's security"}
        create_team(store, security, space_id=None, team_id=SECURITY_TEAM_ID)
        conductor = {"Name": "Payments Release Management", "MemberUserIds": [CONDUCTOR_USER_ID]}
        create_team(store, conductor, space_id=PAYMENTS_SPACE_ID, team_id=PAYMENTS_RELEASE_MANAGEMENT_TEAM_ID)
        developers = {"Name": "Payments Developers", "MemberUserIds": [PAYMENTS_DEVELOPER_USER_ID]}
        create_team(store, developers, space_id=PAYMENTS_SPACE_ID, team_id=PAYMENTS_DEVELOPERS_TEAM_ID)
        store.counters["Teams"] = int(PAYMENTS_DEVELOPERS_TEAM_ID.split("-")[1])
        environments = ["Development", "Test", "Staging", "Production"]
        for order, name in enumerate(environments):
            create_environment(store, PAYMENTS_SPACE_ID, {"Name": name, "SortOrder": order}, self.admin)
        ids = [PAYMENTS_DEVELOPMENT_ID, PAYMENTS_TEST_ID, PAYMENTS_STAGING_ID, PAYMENTS_PRODUCTION_ID]
        phases = [
            _phase(name, env, automatic=name == "Development") for name, env in zip(environments, ids, strict=True)
        ]
        create_lifecycle(store, PAYMENTS_SPACE_ID, {"Name": "Default Lifecycle", "Phases": phases}, self.admin)
        create_project_group(store, PAYMENTS_SPACE_ID, {"Name": "Payments"}, self.admin)
        self._payments_projects()
        for name, environment_id in zip(("pay-dev-01", "pay-test-01", "pay-stg-01", "pay-prod-01"), ids, strict=True):
            machine: Doc = {
                "Name": name,
                "EnvironmentIds": [environment_id],
                "Roles": [PAYMENTS_ROLE],
                "Endpoint": {
                    "CommunicationStyle": "TentaclePassive",
                    "Uri": f"https://{name}.example.test:10933/",
                    "Thumbprint": name.upper().replace("-", "")[:16].ljust(40, "0"),
                },
            }
            create_machine(store, PAYMENTS_SPACE_ID, machine, self.admin)
        self._settle()
        self._release(PAYMENTS_SERVICE_ID, PAYMENTS_VERSION, "Payments: card refunds.", space_id=PAYMENTS_SPACE_ID)
        for environment_id in (PAYMENTS_DEVELOPMENT_ID, PAYMENTS_TEST_ID):
            self._deploy(PAYMENTS_SERVICE_ID, PAYMENTS_VERSION, environment_id, space_id=PAYMENTS_SPACE_ID)

    def _payments_projects(self) -> None:
        store = self.store
        later = [PAYMENTS_STAGING_ID, PAYMENTS_PRODUCTION_ID]
        service = create_project(
            store,
            PAYMENTS_SPACE_ID,
            {
                "Name": "Payments Service",
                "ProjectGroupId": PAYMENTS_PROJECT_GROUP_ID,
                "LifecycleId": PAYMENTS_LIFECYCLE_ID,
                "Description": "Card payments, in the Payments team's own space.",
            },
            self.admin,
        )
        security = [SECURITY_TEAM_ID, PAYMENTS_RELEASE_MANAGEMENT_TEAM_ID]
        steps = [
            _manual("Security approval", security, "Confirm the security review of the payment flows.", later),
            _deploy_step("Deploy Payments Service", PAYMENTS_ROLE, "Sample.Payments"),
        ]
        update_process(store, store.processes[service["DeploymentProcessId"]], {"Steps": steps})
        parent = create_project(
            store,
            SPACE_ID,
            {
                "Name": "Payments Orchestration",
                "ProjectGroupId": SAMPLE_PROJECT_GROUP_ID,
                "LifecycleId": ORCHESTRATION_LIFECYCLE_ID,
                "Description": "Coordinates the release of Payments, whose components live in the Payments space.",
            },
            self.admin,
        )
        conductor = [RELEASE_MANAGEMENT_TEAM_ID]
        parent_steps = [
            _manual("Plan the release", conductor, "Release Conductor plans the release and its notes.", []),
            _manual("Security approval", [SECURITY_TEAM_ID, QA_TEAM_ID], "Security signs off the release.", []),
            _manual("Deploy the components", conductor, "Release Conductor deploys the components.", []),
        ]
        update_process(store, store.processes[parent["DeploymentProcessId"]], {"Steps": parent_steps})
