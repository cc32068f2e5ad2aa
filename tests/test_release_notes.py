"""A promotion's release notes and prompted variables: from the documented shapes (octopus-api.md §8.1, §8.2),
and from the simulator over HTTP."""

from __future__ import annotations

import pytest

from simulator.seed import DATABASE_ID, DEVELOPMENT_ID, TEST_ID
from tests.support.promotion_octopus import PromotionOctopus, octopus, orchestration
from workers.promotion_choice import ComponentChoice
from workers.prompted_values import MissingValues, form_values
from workers.release_notes import component_notes, plan_notes

__all__ = ["octopus"]  # the fixture

BUILD = {
    "PackageId": "Sample.Database",
    "Version": "2030.1.0.2",
    "BuildNumber": "412",
    "WorkItems": [{"Id": "DB-7", "LinkUrl": "https://issues.example.test/DB-7", "Description": "Index the orders"}],
    "Commits": [{"Id": "0123456789abcdef0123", "LinkUrl": "https://git.example.test/c/0123", "Comment": "Add index\n"}],
}


def choice(project: str, action: str, **fields: object) -> ComponentChoice:
    values: dict[str, object] = {
        "project": project,
        "project_id": None,
        "action": action,
        "reason": None,
        "release_id": None,
        "release_version": None,
        "channel_id": None,
        "from_version": None,
        "source_environment": None,
        "tenant_id": None,
        "form_values": {},
        "notes_markdown": "",
    }
    return ComponentChoice(**{**values, **fields})  # type: ignore[arg-type]


def test_a_release_without_build_information_gives_its_notes_and_packages() -> None:
    release = {
        "Version": "2030.1.0.1",
        "ReleaseNotes": "Faster reports.",
        "SelectedPackages": [{"ActionName": "Deploy Database", "PackageReferenceName": "", "Version": "2030.1.0.1"}],
    }

    notes = component_notes(project="Database", release=release, preview={"Changes": []}, from_version="2021.1.0.1")

    assert notes.startswith("### Database 2030.1.0.1 (from 2021.1.0.1)\n")
    assert "Faster reports." in notes
    assert "Packages: Deploy Database 2030.1.0.1" in notes


def test_a_release_with_build_information_gives_the_preview_s_changes() -> None:
    release = {"Version": "2030.1.0.2", "ReleaseNotes": "Only this release.", "BuildInformation": [BUILD]}
    changes = [
        {"Version": "2030.1.0.1", "ReleaseNotes": "Faster reports.", "WorkItems": [], "Commits": []},
        {
            "Version": "2030.1.0.2",
            "ReleaseNotes": "Orders indexed.",
            "WorkItems": BUILD["WorkItems"],
            "Commits": BUILD["Commits"],
            "BuildInformation": [{"PackageId": "Sample.Database", "Version": "2030.1.0.2", "BuildNumber": "412"}],
        },
    ]

    notes = component_notes(project="Database", release=release, preview={"Changes": changes}, from_version=None)

    assert "#### 2030.1.0.1\n\nFaster reports." in notes
    assert "#### 2030.1.0.2\n\nOrders indexed." in notes
    assert "- [DB-7](https://issues.example.test/DB-7): Index the orders" in notes
    assert "- [0123456](https://git.example.test/c/0123): Add index" in notes
    assert "Packages: Sample.Database 2030.1.0.2 (build 412)" in notes
    assert "Only this release." not in notes


def test_build_information_without_changes_gives_the_release_s_own() -> None:
    release = {"Version": "2030.1.0.2", "ReleaseNotes": "Orders indexed.", "BuildInformation": [BUILD]}

    notes = component_notes(project="Database", release=release, preview={}, from_version=None)

    assert "Orders indexed." in notes
    assert "Work items:\n\n- [DB-7](https://issues.example.test/DB-7): Index the orders" in notes
    assert "Commits:\n\n- [0123456](https://git.example.test/c/0123): Add index" in notes


def test_the_plan_lists_every_component_and_the_notes_of_those_deployed() -> None:
    choices = [
        choice(
            "Database",
            "deploy",
            release_version="2030.1.0.1",
            from_version="2021.1.0.1",
            source_environment="Test",
            notes_markdown="### Database 2030.1.0.1\n\nFaster reports.\n",
        ),
        choice("Web API", "skip", reason="2030.1.0.1 is already current in Staging", from_version="2030.1.0.1"),
        choice("Scheduling Service", "skip", reason="no release matching 2030.1.0.* | none", warning=True),
        choice("Web UI", "fail", reason="prompted variable(s) Colour of Web UI need a value"),
    ]

    notes = plan_notes(
        choices,
        orchestration=orchestration({"project": "X"}),
        parent_release_version="2030.1.0.9",
        destination="Staging",
        tenant="Contoso",
    )

    assert notes.startswith("## Release Orchestration 2030.1.0.9 to Staging for Contoso\n")
    assert "| 1 | Database | 2030.1.0.1 | 2021.1.0.1 | deploy (from Test) |" in notes
    assert "| 2 | Web API |  | 2030.1.0.1 | skip: 2030.1.0.1 is already current in Staging |" in notes
    assert "| 3 | Scheduling Service |  |  | skip; **warning**: no release matching 2030.1.0.* \\| none |" in notes
    assert "| 4 | Web UI |  |  | **fails**: prompted variable(s) Colour of Web UI need a value |" in notes
    assert notes.endswith("## Release notes\n\n### Database 2030.1.0.1\n\nFaster reports.\n")


def test_a_plan_that_deploys_nothing_says_so() -> None:
    notes = plan_notes(
        [choice("Web API", "skip", reason="already current")],
        orchestration=orchestration({"project": "X"}),
        parent_release_version="1.0",
        destination="Staging",
        tenant=None,
    )

    assert notes.endswith("## Release notes\n\nNothing is deployed.\n")


def prompt(element: str, name: str, *, required: bool) -> dict[str, object]:
    control = {"Type": "VariableValue", "Name": name, "Label": name, "Required": required}
    return {"Name": element, "Control": control, "IsValueRequired": required}


def test_prompted_values_come_from_the_rules_then_the_parent_by_name() -> None:
    form = {
        "Values": {"e-4": "default"},
        "Elements": [
            prompt("e-1", "DatabaseName", required=True),
            prompt("e-2", "Colour", required=True),
            prompt("e-3", "Optional", required=False),
            prompt("e-4", "HasDefault", required=True),
            {"Name": "Instructions", "Control": {"Type": "Paragraph", "Text": "Read me"}},
        ],
    }

    values = form_values(form, {"databasename": "sample"}, {"Colour": "blue", "DatabaseName": "parent's"})

    assert values == {"e-1": "sample", "e-2": "blue"}
    with pytest.raises(MissingValues) as missing:
        form_values(form, {}, {})
    assert missing.value.names == ["DatabaseName", "Colour"]


def test_the_simulator_s_release_notes_and_build_information_reach_the_plan(octopus: PromotionOctopus) -> None:
    release_id = octopus.release(DATABASE_ID, "2030.1.0.2", ReleaseNotes="Orders indexed.", BuildInformation=[BUILD])
    octopus.deployed(release_id, DEVELOPMENT_ID, TEST_ID)
    rules = orchestration({"project": "Database", "release_pattern": "{parent:3}.*"})

    choices = octopus.choose(rules, "2030.1.0.9")
    notes = plan_notes(
        choices, orchestration=rules, parent_release_version="2030.1.0.9", destination="Staging", tenant=None
    )

    assert "| 1 | Database | 2030.1.0.2 | 2021.1.0.1 | deploy (from Test) |" in notes
    assert "Orders indexed." in notes
    assert "[DB-7](https://issues.example.test/DB-7): Index the orders" in notes
    assert "[0123456](https://git.example.test/c/0123): Add index" in notes
