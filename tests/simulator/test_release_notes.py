"""Release notes: build information pushed and copied onto releases; the preview's and deployment's Changes."""

from __future__ import annotations

from typing import Any

from simulator import seed
from tests.simulator.conftest import Api


def _build(commit: str, work_item: str) -> dict[str, Any]:
    return {
        "BuildEnvironment": "Jenkins",
        "BuildNumber": "77",
        "BuildUrl": "https://ci.example.test/77",
        "Branch": "main",
        "VcsType": "Git",
        "VcsRoot": "https://git.example.test/db",
        "VcsCommitNumber": commit,
        "Commits": [{"Id": commit, "LinkUrl": f"https://git.example.test/db/commit/{commit}", "Comment": "Index"}],
        "WorkItems": [{"Id": work_item, "LinkUrl": f"https://issues.example.test/{work_item}", "Description": "Slow"}],
    }


def test_the_seeded_web_api_releases_carry_notes_packages_and_build_information(api: Api) -> None:
    release = api.json(f"/api/Spaces-1/releases/{seed.WEB_API_2021_3_RELEASE_ID}")
    assert release["ReleaseNotes"] == "Orders: paging, and the refund total fixed."
    assert release["SelectedPackages"] == [
        {"ActionName": "Deploy Web API", "PackageReferenceName": "", "Version": seed.WEB_API_2021_3_VERSION}
    ]
    [build] = release["BuildInformation"]
    assert (build["Id"], build["PackageId"], build["Version"]) == (
        seed.WEB_API_2021_3_BUILD_INFORMATION_ID,
        seed.WEB_API_PACKAGE_ID,
        seed.WEB_API_2021_3_VERSION,
    )
    assert [w["Id"] for w in build["WorkItems"]] == ["SAMPLE-104", "SAMPLE-107"]
    assert len(build["Commits"]) == 2
    assert build["VcsCommitNumber"] == build["Commits"][-1]["Id"]
    assert {"BuildEnvironment", "BuildNumber", "BuildUrl", "Branch", "VcsType", "VcsRoot", "VcsCommitUrl"} <= set(build)
    previous = api.json(f"/api/Spaces-1/releases/{seed.WEB_API_2021_3_0_1_RELEASE_ID}")
    assert [b["Id"] for b in previous["BuildInformation"]] == [seed.WEB_API_2021_3_0_1_BUILD_INFORMATION_ID]
    assert api.json(f"/api/Spaces-1/releases/{seed.DATABASE_2021_3_RELEASE_ID}")["BuildInformation"] == []


def test_the_staging_preview_lists_the_changes_since_what_staging_runs(api: Api) -> None:
    """Staging runs Web API 2021.2.0.1; Test runs 2021.3.0.2: the changes are 2021.3.0.1 and 2021.3.0.2."""
    release_id = seed.WEB_API_2021_3_RELEASE_ID
    preview = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.STAGING_ID}")
    assert [c["Version"] for c in preview["Changes"]] == ["2021.3.0.1", seed.WEB_API_2021_3_VERSION]
    first, second = preview["Changes"]
    assert first["ReleaseNotes"] == "Orders: list endpoint."
    assert [w["Id"] for w in first["WorkItems"]] == ["SAMPLE-101"]
    assert [w["Id"] for w in second["WorkItems"]] == ["SAMPLE-104", "SAMPLE-107"]
    assert [c["Comment"] for c in second["Commits"]] == ["Page the orders list", "Fix the orders total for refunds"]
    assert second["BuildInformation"] == [
        {
            "PackageId": seed.WEB_API_PACKAGE_ID,
            "Version": seed.WEB_API_2021_3_VERSION,
            "BuildNumber": "418",
            "BuildUrl": "https://ci.example.test/sample/web-api/runs/418",
            "VcsType": "Git",
            "VcsRoot": "https://git.example.test/sample/web-api",
            "VcsCommitNumber": second["Commits"][-1]["Id"],
        }
    ]
    markdown = preview["ChangesMarkdown"]
    assert markdown.index("## 2021.3.0.1") < markdown.index("## 2021.3.0.2")
    assert "SAMPLE-107" in markdown
    assert "Fix the orders total for refunds" in markdown
    # What Test runs already: the release alone.
    same = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.TEST_ID}")
    assert [c["Version"] for c in same["Changes"]] == [seed.WEB_API_2021_3_VERSION]


def test_a_deployment_keeps_the_changes_measured_before_it_ran(api: Api) -> None:
    deployment = api.deploy(ReleaseId=seed.WEB_API_2021_3_RELEASE_ID, EnvironmentId=seed.STAGING_ID)
    assert [c["Version"] for c in deployment["Changes"]] == ["2021.3.0.1", seed.WEB_API_2021_3_VERSION]
    api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])
    stored = api.json(f"/api/Spaces-1/deployments/{deployment['Id']}")
    assert stored["Changes"] == deployment["Changes"]
    assert "SAMPLE-101" in stored["ChangesMarkdown"]
    after = api.json(f"/api/Spaces-1/releases/{seed.WEB_API_2021_3_RELEASE_ID}/deployments/preview/{seed.STAGING_ID}")
    assert [c["Version"] for c in after["Changes"]] == [seed.WEB_API_2021_3_VERSION]


def test_pushed_build_information_attaches_to_releases_of_that_package_version(api: Api) -> None:
    build = _build("abc1234", "DB-9")
    body = {"PackageId": "Sample.Database", "Version": "2021.3.0.9", "OctopusBuildInformation": build}
    response = api.post("/api/Spaces-1/build-information", body)
    assert response.status_code == 201, response.text
    pushed = response.json()
    assert pushed["Id"] == "BuildInformation-3"
    assert api.json(f"/api/build-information/{pushed['Id']}")["Commits"][0]["Id"] == "abc1234"
    listed = api.json("/api/Spaces-1/build-information", packageId="sample.database")["Items"]
    assert [b["Id"] for b in listed] == [pushed["Id"]]
    again = api.post("/api/Spaces-1/build-information", body)
    assert again.status_code == 400
    assert api.post("/api/build-information?overwriteMode=OverwriteExisting", body).json()["Id"] == pushed["Id"]
    release = api.post("/api/Spaces-1/releases", {"ProjectId": seed.DATABASE_ID, "Version": "2021.3.0.9"}).json()
    [attached] = release["BuildInformation"]
    assert (attached["Id"], attached["WorkItems"][0]["Id"]) == (pushed["Id"], "DB-9")
    other = api.post("/api/Spaces-1/releases", {"ProjectId": seed.WEB_UI_ID, "Version": "2021.3.0.9"}).json()
    assert other["BuildInformation"] == []
    # The package version a release takes may be chosen per action.
    chosen = {"ActionName": "Deploy Database", "Version": "2021.3.0.9"}
    named = api.post(
        "/api/Spaces-1/releases", {"ProjectId": seed.DATABASE_ID, "Version": "2021.3.1.0", "SelectedPackages": [chosen]}
    ).json()
    assert [b["Id"] for b in named["BuildInformation"]] == [pushed["Id"]]
    assert api.as_user(seed.VIEWER_API_KEY).post("/api/build-information", body).status_code == 403
