"""A component of another space (rules `space:`), chosen against the simulator over HTTP: looked up in its own
space, with the orchestration's destination and tenant matched there by name."""

from __future__ import annotations

from simulator.seed import (
    CONTOSO_ID,
    PAYMENTS_SERVICE_ID,
    PAYMENTS_SERVICE_RELEASE_ID,
    PAYMENTS_SPACE_ID,
    PAYMENTS_STAGING_ID,
    SPACE_ID,
    STAGING_ID,
)
from tests.support.promotion_octopus import PromotionOctopus, octopus, orchestration

__all__ = ["octopus"]  # the fixture

PAYMENTS = {"project": "Payments Service", "space": "Payments"}


def test_a_component_of_another_space_is_chosen_there_by_the_destinations_name(octopus: PromotionOctopus) -> None:
    rules = orchestration({"project": "Database"}, PAYMENTS, release_pattern="{parent:3}.*")

    database, payments = octopus.choose(rules, "2021.3.0.1", STAGING_ID)

    assert (database.space_id, database.environment_id) == (None, None)  # the orchestration's own
    assert (payments.action, payments.reason) == ("deploy", None)
    assert (payments.space_id, payments.environment_id) == (PAYMENTS_SPACE_ID, PAYMENTS_STAGING_ID)
    assert (payments.project_id, payments.release_id) == (PAYMENTS_SERVICE_ID, PAYMENTS_SERVICE_RELEASE_ID)
    assert (payments.source_environment, payments.from_version) == ("Test", None)
    assert "### Payments Service 2021.3.0.1" in payments.notes_markdown


def test_a_destination_with_no_namesake_in_the_components_space_fails_it_saying_so(
    octopus: PromotionOctopus,
) -> None:
    hotfix = octopus.post("environments", {"Name": "Hotfix"})
    rules = orchestration(PAYMENTS)

    (payments,) = octopus.choose(rules, "2021.3.0.1", hotfix["Id"])

    assert payments.action == "fail"
    assert payments.reason == "no environment named 'Hotfix' in space Payments, where Payments Service lives"
    assert octopus.admin.get(f"/api/{SPACE_ID}/environments/{hotfix['Id']}").status_code == 200


def test_a_tenant_the_components_space_does_not_have_is_dropped_for_an_untenanted_component(
    octopus: PromotionOctopus,
) -> None:
    (payments,) = octopus.choose(orchestration(PAYMENTS), "2021.3.0.1", STAGING_ID, tenant_id=CONTOSO_ID)

    assert (payments.action, payments.tenant_id, payments.release_id) == ("deploy", None, PAYMENTS_SERVICE_RELEASE_ID)


def test_a_tenant_the_components_space_does_not_have_skips_a_tenanted_component(octopus: PromotionOctopus) -> None:
    project = octopus.admin.get(f"/api/{PAYMENTS_SPACE_ID}/projects/{PAYMENTS_SERVICE_ID}").json()
    changed = octopus.admin.put(
        f"/api/{PAYMENTS_SPACE_ID}/projects/{PAYMENTS_SERVICE_ID}",
        json={**project, "TenantedDeploymentMode": "TenantedOrUntenanted"},
    )
    assert changed.status_code == 200, changed.text

    (payments,) = octopus.choose(orchestration(PAYMENTS), "2021.3.0.1", STAGING_ID, tenant_id=CONTOSO_ID)

    assert (payments.action, payments.reason) == ("skip", "tenant Contoso is not in the space of Payments Service")


def test_the_parents_tenant_is_the_tenant_of_the_same_name_in_the_components_space(octopus: PromotionOctopus) -> None:
    project = octopus.admin.get(f"/api/{PAYMENTS_SPACE_ID}/projects/{PAYMENTS_SERVICE_ID}").json()
    octopus.admin.put(
        f"/api/{PAYMENTS_SPACE_ID}/projects/{PAYMENTS_SERVICE_ID}",
        json={**project, "TenantedDeploymentMode": "TenantedOrUntenanted"},
    ).raise_for_status()
    body = {"Name": "Contoso", "ProjectEnvironments": {PAYMENTS_SERVICE_ID: [PAYMENTS_STAGING_ID]}}
    created = octopus.admin.post(f"/api/{PAYMENTS_SPACE_ID}/tenants", json=body)
    assert created.status_code == 201, created.text

    (payments,) = octopus.choose(orchestration(PAYMENTS), "2021.3.0.1", STAGING_ID, tenant_id=CONTOSO_ID)

    assert (payments.action, payments.reason) == ("deploy", None)
    assert payments.tenant_id == created.json()["Id"] != CONTOSO_ID
