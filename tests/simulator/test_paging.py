"""Octopus's ResourceCollection paging and the /all variants."""

from __future__ import annotations

from tests.simulator.conftest import Api


def test_default_page_is_30_with_links(api: Api) -> None:
    page = api.json("/api/events")
    assert page["ItemType"] == "Event"
    assert page["ItemsPerPage"] == 30
    assert len(page["Items"]) == 30
    total = page["TotalResults"]
    assert total > 30
    assert page["NumberOfPages"] == -(-total // 30)
    assert page["LastPageNumber"] == page["NumberOfPages"] - 1
    assert page["Links"]["Page.Next"] == "/api/events?skip=30&take=30"
    assert page["Links"]["Page.All"] == "/api/events?skip=0&take=2147483647"


def test_skip_and_take(api: Api) -> None:
    every = [e["Id"] for e in api.json("/api/events", take=1000)["Items"]]
    page = api.json("/api/events", skip=5, take=7)
    assert [e["Id"] for e in page["Items"]] == every[5:12]
    assert page["ItemsPerPage"] == 7
    last = api.json("/api/events", skip=len(every) - 2, take=7)
    assert len(last["Items"]) == 2
    assert "Page.Next" not in last["Links"]


def test_links_keep_the_space_segment_and_filters(api: Api) -> None:
    page = api.json("/api/Spaces-1/machines", roles="web-server", take=2)
    assert page["Links"]["Self"] == "/api/Spaces-1/machines?roles=web-server&skip=0&take=2"
    assert page["Links"]["Page.Next"] == "/api/Spaces-1/machines?roles=web-server&skip=2&take=2"


def test_all_variants_are_plain_arrays(api: Api) -> None:
    for path in (
        "/api/spaces/all",
        "/api/Spaces-1/projects/all",
        "/api/Spaces-1/environments/all",
        "/api/Spaces-1/machines/all",
        "/api/Spaces-1/lifecycles/all",
        "/api/Spaces-1/channels/all",
        "/api/Spaces-1/tenants/all",
        "/api/teams/all",
    ):
        body = api.json(path)
        assert isinstance(body, list), path
        assert body, path


def test_name_and_partial_name_filters(api: Api) -> None:
    assert [p["Name"] for p in api.json("/api/Spaces-1/projects", partialName="web")["Items"]] == ["Web API", "Web UI"]
    assert [p["Id"] for p in api.json("/api/Spaces-1/projects", name="web api")["Items"]] == ["Projects-2"]
    assert [p["Id"] for p in api.json("/api/Spaces-1/projects", ids="Projects-1,Projects-4")["Items"]] == [
        "Projects-1",
        "Projects-4",
    ]
