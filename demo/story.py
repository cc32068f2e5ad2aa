"""What every act of the story uses: the people of the seeded Octopus acting through its REST API, waiting
for what the conductor does, and answering what it leaves to people.

Everything is done and checked through the Octopus REST API, as the people of the story would; Redis is
read only to name the conductor's plans and relay records in the narration and the checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx

from demo.cast import Cast
from demo.narration import Narrator, Outcome, StoryFailed
from demo.schedule_clock import ScheduleClock
from workers.approval_records import ApprovalStore
from workers.plans import PlanStore
from workers.promotion_schedule import PromotionScheduler

Doc = dict[str, Any]
T = TypeVar("T")


class Story:
    def __init__(
        self,
        *,
        octopus_url: str,
        plans: PlanStore,
        approvals: ApprovalStore,
        scheduler: PromotionScheduler,
        clock: ScheduleClock,
        cast: Cast,
        narrator: Narrator,
        timeout: float,
    ) -> None:
        self.url = octopus_url
        self.plans = plans
        self.approvals = approvals
        self.scheduler = scheduler
        self.clock = clock
        self.cast = cast
        self.narrator = narrator
        self.timeout = timeout
        self.outcome = Outcome()
        self.left_to_people: dict[str, str] = {}  # interruption id -> who answered it
        self._seen: set[str] = set()

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Octopus-ApiKey": key}, timeout=10)

    def play(self, acts: Sequence[tuple[str, Callable[[Story], None]]]) -> Outcome:
        """Each act in turn, under its heading; the first that fails ends the story."""
        with self.client(self.cast.admin_key) as admin:
            history = admin.get(f"/api/{self.cast.space_id}/interruptions", params={"take": 1000}).json()["Items"]
        self._seen = {item["Id"] for item in history}  # approvals from before the demo are not news
        try:
            for title, act in acts:
                self.narrator.heading(title)
                self.outcome.begin(title)
                act(self)
        except StoryFailed as failure:
            self.outcome.check(False, str(failure))
        except Exception as error:  # a defect of the demo itself: reported as a failed part, not a traceback
            self.outcome.check(False, f"the story broke off: {error!r}")
        finally:
            self.narrator.done()
        return self.outcome

    # --- what people do through the API --------------------------------------------------------------

    def deploy(self, client: httpx.Client, release_id: str, environment_id: str) -> Doc:
        response = client.post(
            f"/api/{self.cast.space_id}/deployments", json={"ReleaseId": release_id, "EnvironmentId": environment_id}
        )
        if response.status_code != 201:
            raise StoryFailed(f"Octopus refused the deployment of {release_id}: {response.text}")
        deployment: Doc = response.json()
        return deployment

    def release(self, client: httpx.Client, project_id: str, version: str) -> Doc:
        found: Doc = client.get(f"/api/{self.cast.space_id}/projects/{project_id}/releases/{version}").json()
        return found

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

    def interventions(self, client: httpx.Client, deployment_id: str) -> list[Doc]:
        found = client.get(f"/api/{self.cast.space_id}/interruptions", params={"regarding": deployment_id}).json()
        return [item for item in found["Items"] if item["Type"] == "ManualIntervention"]

    # --- waiting -------------------------------------------------------------------------------------

    def wait(
        self,
        what: str,
        probe: Callable[[], T | None],
        *,
        watch: bool = False,
        progress: Callable[[], str] | None = None,
    ) -> T:
        """Until `probe` answers; with `watch`, telling the conductor's approvals and answering what it left to
        people meanwhile."""
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
            if record.status not in ("looking", "refused") or record.interruption_id in self.left_to_people:
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
                    self.left_to_people[record.interruption_id] = username
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
