"""The story `conductor demo` plays against the simulator, told as it happens and checked at the end.

Act 1: a new web server joins Production. The conductor redeploys Web API, then Web UI, to it alone;
Database and Scheduling Service are skipped with their reasons; the components' approvals in Production
are relayed from the approvals people gave those very releases in Production before, naming them.
Act 2, the central one: Release Orchestration 2021.3.0.1 to Staging, then to Production. At "Plan the release"
the conductor chooses each component's release and submits the plan with the release notes; in Production QA,
the web admins and the business owners approve once, in the parent; at "Deploy the components" the conductor
deploys Database, Web API and Web UI in order (Scheduling Service has no 2021.3.0 release), relaying the
parent's approvals into them; the DBAs' step is left to people.
Act 3: a person rolls Web UI back to 2021.1.0.2 in Production by hand. No approval covers that deployment: the
conductor leaves its interventions to people, and says why.

Everything is done and checked through the Octopus REST API, as the people of the story would.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import httpx

from service.demo_promotion import act_promotion
from workers.approval_records import ApprovalStore
from workers.plans import Plan, PlanStore

Doc = dict[str, Any]
T = TypeVar("T")


class StoryFailed(Exception):
    """A part of the story did not happen."""


@dataclass(frozen=True)
class Cast:
    """Who is who in the seeded Octopus, by API key and user id."""

    space_id: str
    admin_key: str
    qa_key: str
    qa_username: str
    web_admin_key: str
    web_admin_username: str
    business_owner_key: str
    business_owner_username: str
    conductor_user_id: str
    staging_id: str
    production_id: str
    web_role: str
    web_ui_id: str
    orchestration_project_id: str
    people_by_team: dict[str, tuple[str, str]]  # team id -> (API key, username) of a member


class Narrator:
    """Plain lines as things happen; on a terminal, also a live status line under them."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._live = self._out.isatty()
        self._started = time.monotonic()
        self._status = ""

    def say(self, text: str) -> None:
        stamp = f"[{time.monotonic() - self._started:6.1f}s]"
        self._clear()
        print(f"{stamp} {text}", file=self._out, flush=True)
        self._draw()

    def heading(self, text: str) -> None:
        self._clear()
        print(f"\n{text}", file=self._out, flush=True)
        self._draw()

    def status(self, text: str) -> None:
        self._status = text
        self._draw()

    def done(self) -> None:
        self._status = ""
        self._clear()

    def _clear(self) -> None:
        if self._live:
            self._out.write("\r\x1b[K")

    def _draw(self) -> None:
        if self._live and self._status:
            self._out.write(f"\r\x1b[K  … {self._status}")
            self._out.flush()


@dataclass
class Outcome:
    checks: list[tuple[bool, str]] = field(default_factory=list)

    def check(self, ok: bool, text: str) -> None:
        self.checks.append((ok, text))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks)


class Story:
    def __init__(
        self,
        *,
        octopus_url: str,
        plans: PlanStore,
        approvals: ApprovalStore,
        cast: Cast,
        narrator: Narrator,
        timeout: float,
    ) -> None:
        self.url = octopus_url
        self.plans = plans
        self.approvals = approvals
        self.cast = cast
        self.narrator = narrator
        self.timeout = timeout
        self.outcome = Outcome()
        self._seen: set[str] = set()
        self._left_to_people: dict[str, str] = {}  # interruption id -> who answered it

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Octopus-ApiKey": key}, timeout=10)

    def play(self) -> Outcome:
        with self.client(self.cast.admin_key) as admin:
            history = admin.get(f"/api/{self.cast.space_id}/interruptions", params={"take": 1000}).json()["Items"]
        self._seen = {item["Id"] for item in history}  # approvals from before the demo are not news
        try:
            self.act_one()
            act_promotion(self, heading="Act 2: Release Orchestration 2021.3.0.1 promotes every component, in order")
            self.act_three()
        except StoryFailed as failure:
            self.outcome.check(False, str(failure))
        finally:
            self.narrator.done()
        return self.outcome

    # --- act 1 -------------------------------------------------------------------------------------

    def act_one(self) -> None:
        cast = self.cast
        self.narrator.heading("Act 1: a new web server joins Production")
        with self.client(cast.admin_key) as admin:
            machine = admin.post(
                f"/api/{cast.space_id}/machines",
                json={
                    "Name": "prod-web-03",
                    "EnvironmentIds": [cast.production_id],
                    "Roles": [cast.web_role],
                    "Endpoint": {"CommunicationStyle": "TentaclePassive", "Uri": "https://prod-web-03.example:10933/"},
                },
            )
            if machine.status_code != 201:
                raise StoryFailed(f"Octopus refused the new machine: {machine.text}")
        machine_id = machine.json()["Id"]
        self.narrator.say(f"prod-web-03 ({machine_id}) registered in Production with role {cast.web_role}")
        plan = self.wait(
            "the redeploy plan for prod-web-03",
            lambda: self._plan_for(machine_id),
            watch=True,
            progress=lambda: self._plan_progress(machine_id),
        )
        self._report_plan(plan)
        deployed = [step for step in plan.steps if step.status == "succeeded"]
        self.outcome.check(
            [step.project for step in deployed] == ["Web API", "Web UI"],
            "prod-web-03 received Web API, then Web UI, and nothing else",
        )
        self.outcome.check(
            {step.project for step in plan.steps if step.status == "skipped"} == {"Database", "Scheduling Service"},
            "Database and Scheduling Service were skipped, each with its reason",
        )
        with self.client(cast.admin_key) as admin:
            for step in deployed:
                deployment = admin.get(f"/api/{cast.space_id}/deployments/{step.deployment_id}").json()
                task = admin.get(f"/api/tasks/{deployment['TaskId']}").json()
                self.outcome.check(
                    deployment["SpecificMachineIds"] == [machine_id] and task["State"] == "Success",
                    f"Octopus shows {step.project} {step.release_version} ({step.deployment_id}) deployed to "
                    f"prod-web-03 alone: {task['State']}",
                )
                self.check_answered(admin, step.deployment_id or "")
        self.outcome.check(
            any(item["ResponsibleUserId"] == cast.conductor_user_id for item in self._interventions_of(deployed)),
            "the conductor reused the approvals people gave those very releases in Production, naming them",
        )

    def _interventions_of(self, steps: list[Any]) -> list[Doc]:
        found: list[Doc] = []
        with self.client(self.cast.admin_key) as admin:
            for step in steps:
                items = admin.get(
                    f"/api/{self.cast.space_id}/interruptions", params={"regarding": step.deployment_id}
                ).json()["Items"]
                found += [item for item in items if item["Type"] == "ManualIntervention"]
        return found

    def check_answered(self, client: httpx.Client, deployment_id: str, *, reused: bool = True) -> None:
        """Each intervention was answered: by the conductor naming the person whose approval covers it (an
        earlier approval of the release, when `reused`; else the parent's), or by a person where the conductor
        said why it left it to them."""
        found = client.get(f"/api/{self.cast.space_id}/interruptions", params={"regarding": deployment_id}).json()
        for interruption in found["Items"]:
            if interruption["Type"] != "ManualIntervention":
                continue
            if interruption["Id"] in self._left_to_people:
                person = self._left_to_people[interruption["Id"]]
                self.outcome.check(
                    not interruption["IsPending"] and interruption["Form"]["Values"].get("Result") == "Proceed",
                    f"'{interruption['Title']}' of {deployment_id} left to people by the conductor, "
                    f"approved by {person}",
                )
            else:
                self._check_relayed(client, deployment_id, interruption["Id"], reused=reused)

    def _plan_for(self, machine_id: str) -> Plan | None:
        for plan in self.plans.recent(20):
            if machine_id in plan.machine_ids and plan.status != "running":
                return plan
        return None

    def _plan_progress(self, machine_id: str) -> str:
        for plan in self.plans.recent(20):
            if machine_id in plan.machine_ids:
                steps = ", ".join(
                    f"{step.project} {step.status}" + (f" ({step.deployment_id})" if step.deployment_id else "")
                    for step in plan.steps
                )
                return f"{plan.id} {plan.status}: {steps}"
        return "no plan yet"

    def _report_plan(self, plan: Plan) -> None:
        for step in plan.steps:
            if step.status == "skipped":
                self.narrator.say(f"{step.project}: skipped ({step.reason})")
            elif step.deployment_id:
                self.narrator.say(
                    f"{step.project}: {step.release_version} as {step.deployment_id} to "
                    f"{', '.join(step.machine_ids)} only: {step.status}" + (f" ({step.reason})" if step.reason else "")
                )
        self.narrator.say(f"{plan.id}: {plan.status}")

    # --- act 3 -------------------------------------------------------------------------------------

    def act_three(self) -> None:
        cast = self.cast
        self.narrator.heading("Act 3: a person's own deployment is left to people")
        with self.client(cast.admin_key) as admin:
            release = admin.get(f"/api/{cast.space_id}/projects/{cast.web_ui_id}/releases/2021.1.0.2").json()
            child = admin.post(
                f"/api/{cast.space_id}/deployments",
                json={"ReleaseId": release["Id"], "EnvironmentId": cast.production_id},
            )
            if child.status_code != 201:
                raise StoryFailed(f"Octopus refused the Web UI deployment: {child.text}")
            child_id = child.json()["Id"]
            self.narrator.say(
                f"admin rolls Web UI back to 2021.1.0.2 in Production ({child_id}) by hand: Release Orchestration "
                "2021.3.0.1's approvals do not cover it"
            )
            task = self.wait(
                "people to answer Web UI 2021.1.0.2's interventions, and the deployment to finish",
                lambda: self.finished_task(admin, child_id),
                watch=True,
            )
            self._check_left_to_people(admin, child_id)
            self.outcome.check(task["State"] == "Success", f"Web UI 2021.1.0.2 in Production: {task['State']}")

    def _check_left_to_people(self, client: httpx.Client, deployment_id: str) -> None:
        """The conductor answered none of the deployment's interventions, and said why for each."""
        found = client.get(f"/api/{self.cast.space_id}/interruptions", params={"regarding": deployment_id}).json()
        for interruption in found["Items"]:
            if interruption["Type"] != "ManualIntervention":
                continue
            record = self.approvals.load(interruption["Id"])
            reason = record.reason if record is not None else None
            self.outcome.check(
                interruption["ResponsibleUserId"] != self.cast.conductor_user_id
                and record is not None
                and record.status == "refused"
                and bool(reason)
                and interruption["Id"] in self._left_to_people,
                f"'{interruption['Title']}' of {deployment_id} not approved by the conductor ({reason}); "
                f"approved by {self._left_to_people.get(interruption['Id'], 'nobody')}",
            )

    def pending(self, client: httpx.Client, deployment_id: str, *, count: int) -> list[Doc] | None:
        found = client.get(
            f"/api/{self.cast.space_id}/interruptions", params={"regarding": deployment_id, "pendingOnly": "true"}
        ).json()["Items"]
        return found if len(found) >= count else None

    def submit(self, person: httpx.Client, interruption: Doc, notes: str) -> bool:
        base = f"/api/{self.cast.space_id}/interruptions/{interruption['Id']}"
        if person.put(f"{base}/responsible").status_code != 200:
            return False
        return person.post(f"{base}/submit", json={"Notes": notes, "Result": "Proceed"}).status_code == 200

    def finished_task(self, client: httpx.Client, deployment_id: str) -> Doc | None:
        deployment = client.get(f"/api/{self.cast.space_id}/deployments/{deployment_id}").json()
        task: Doc = client.get(f"/api/tasks/{deployment['TaskId']}").json()
        return task if task["IsCompleted"] else None

    def _check_relayed(self, client: httpx.Client, deployment_id: str, interruption_id: str, *, reused: bool) -> None:
        """The conductor approved the intervention, relaying the approval that covers it and naming its person."""
        interruption = client.get(f"/api/{self.cast.space_id}/interruptions/{interruption_id}").json()
        values = interruption["Form"]["Values"]
        notes = str(values.get("Notes") or "")
        named = [name for name in (self.cast.qa_username, self.cast.web_admin_username) if f"({name})" in notes]
        self.outcome.check(
            not interruption["IsPending"]
            and values.get("Result") == "Proceed"
            and interruption["ResponsibleUserId"] == self.cast.conductor_user_id
            and notes.startswith("Approved earlier for this very release" if reused else "Approved in the parent")
            and bool(named),
            f"'{interruption['Title']}' of {deployment_id} approved by the conductor, "
            f"{'reusing the approval of' if reused else 'relaying the parent approval of'} "
            f"{', '.join(named) or 'nobody'}",
        )

    # --- waiting -------------------------------------------------------------------------------------

    def wait(
        self,
        what: str,
        probe: Callable[[], T | None],
        *,
        watch: bool = False,
        progress: Callable[[], str] | None = None,
    ) -> T:
        deadline = time.monotonic() + self.timeout
        while True:
            value = probe()
            if value:
                return value
            if watch:
                self._tell_approvals()
                self._people_answer_what_is_left()
            self.narrator.status(f"waiting for {what}")
            if time.monotonic() > deadline:
                where = f"; {progress()}" if progress else ""
                raise StoryFailed(f"{what} did not happen within {self.timeout:.0f} s{where}")
            time.sleep(0.2)

    def _people_answer_what_is_left(self) -> None:
        """Where the conductor leaves an intervention to people, a person of its team answers it."""
        for record in self.approvals.recent(50):
            if record.status not in ("looking", "refused") or record.interruption_id in self._left_to_people:
                continue
            with self.client(self.cast.admin_key) as admin:
                interruption = admin.get(f"/api/{self.cast.space_id}/interruptions/{record.interruption_id}").json()
            if not interruption["IsPending"]:
                continue
            teams = [team for team in interruption["ResponsibleTeamIds"] if team in self.cast.people_by_team]
            person = self.cast.people_by_team[teams[0]] if teams else None
            if person is None:
                continue
            key, username = person
            what = f"'{record.step}' of {record.project} {record.release_version}"
            self.narrator.say(f"conductor left {what} to people: {record.reason}")
            with self.client(key) as someone:
                if self.submit(someone, interruption, f"Checked {record.project} {record.release_version} myself."):
                    self._left_to_people[record.interruption_id] = username
                    self.narrator.say(f"{username} approved it")

    def _tell_approvals(self) -> None:
        """Say so as soon as the conductor approves an intervention anywhere."""
        with self.client(self.cast.admin_key) as admin:
            items = admin.get(f"/api/{self.cast.space_id}/interruptions", params={"take": 50}).json()["Items"]
        for item in items:
            if (
                item["IsPending"]
                or item["Id"] in self._seen
                or item["ResponsibleUserId"] != self.cast.conductor_user_id
            ):
                continue
            self._seen.add(item["Id"])
            first_line = str(item["Form"]["Values"].get("Notes") or "").splitlines()[0:1]
            self.narrator.say(f"conductor approved '{item['Title']}' ({item['Id']}): {' '.join(first_line)}")
