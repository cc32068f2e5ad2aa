"""Tenant tags: canonical names (`TagSet/Tag`), Octopus's tag filter, and the check that a tag exists.

A tag filter ORs the tags within one tag set and ANDs the tag sets (octopus.com "Tenant tags",
"Combinational logic"; OctopusDeploy/Issues #8088 for /tenants?tags=)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from simulator.errors import bad_request
from simulator.store import Doc, Store


def tag_set_of(canonical_name: str) -> str:
    """The tag set part of `TagSet/Tag` (tag names may not hold a `/`, so the last one splits)."""
    return canonical_name.rpartition("/")[0]


def matches(tag_filter: Iterable[str], tenant_tags: Iterable[str]) -> bool:
    """True when the tenant has at least one of the filter's tags in every tag set the filter names.
    An empty filter matches nobody: callers decide what "no filter" means."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for tag in tag_filter:
        wanted[tag_set_of(tag)].add(tag)
    held = set(tenant_tags)
    return bool(wanted) and all(tags & held for tags in wanted.values())


def canonical_names(store: Store, space_id: str) -> set[str]:
    return {tag["CanonicalTagName"] for s in store.tag_sets.values() if s["SpaceId"] == space_id for tag in s["Tags"]}


def check_tags(store: Store, space_id: str, tags: list[str]) -> None:
    """A tenant or machine may only carry tags that exist in its space."""
    known = canonical_names(store, space_id)
    unknown = [tag for tag in tags if tag not in known]
    if unknown:
        raise bad_request(
            *(
                f"The tenant tag '{tag}' does not exist. Tags are named by their canonical name, TagSet/Tag."
                for tag in unknown
            )
        )


def reaches_tenant(machine: Doc, tenant: Doc) -> bool:
    """A machine serves the tenants it names and, through its TenantTags, every tenant those tags match."""
    if tenant["Id"] in machine.get("TenantIds", []):
        return True
    return matches(machine.get("TenantTags", []), tenant.get("TenantTags", []))
