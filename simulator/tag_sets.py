"""Tag sets (message-contracts `tagSetResource.d.ts`, `tagResource.d.ts`): a named group of tenant tags."""

from __future__ import annotations

from simulator.errors import bad_request
from simulator.infrastructure import created_event
from simulator.store import Doc, Store
from simulator.timeutil import iso
from simulator.validation import body_object, optional_str, required_str

DEFAULT_COLOR = "#333333"
TAG_FIELDS = ("Id", "Name", "CanonicalTagName", "Color", "Description", "SortOrder")
# A comma would split a canonical name in a list parameter; a slash would make `TagSet/Tag` ambiguous.
_FORBIDDEN = (",", "/")


def _checked_name(data: Doc, what: str) -> str:
    name = required_str(data, "Name")
    if any(character in name for character in _FORBIDDEN):
        raise bad_request(f"The {what} name '{name}' may not contain ',' or '/'.")
    return name


def _tag(raw: object, position: int) -> Doc:
    """A tag as posted, checked; its Id and CanonicalTagName come when the tag set gets its id."""
    if not isinstance(raw, dict):
        raise bad_request("Each tag must be an object with a Name.")
    sort_order = raw.get("SortOrder")
    return {
        "Name": _checked_name(raw, "tag"),
        "Color": optional_str(raw, "Color") or DEFAULT_COLOR,
        "Description": optional_str(raw, "Description") or "",
        "SortOrder": sort_order if isinstance(sort_order, int) else position,
    }


def create_tag_set(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = _checked_name(data, "tag set")
    raw_tags = data.get("Tags") or []
    if not isinstance(raw_tags, list):
        raise bad_request("The Tags field must be a list of tags.")
    tags = [_tag(raw, position) for position, raw in enumerate(raw_tags)]
    names = [tag["Name"].lower() for tag in tags]
    if len(set(names)) != len(names):
        raise bad_request(f"The tag set '{name}' names a tag more than once.")
    if store.find_by_name("TagSet", space_id, name):
        raise bad_request(f"A tag set with the name '{name}' already exists in this space.")
    tag_set_id = store.next_id("TagSets")
    store.claim_name("TagSet", space_id, name, tag_set_id)
    for tag in tags:
        # Tag ids look like TagSets-1/Tags-14 (OctopusDeploy/go-octopusdeploy pull request 409).
        tag["Id"] = f"{tag_set_id}/{store.next_id('Tags')}"
        tag["CanonicalTagName"] = f"{name}/{tag['Name']}"
    sort_order = data.get("SortOrder")
    in_space = [s for s in store.tag_sets.values() if s["SpaceId"] == space_id]
    tag_set: Doc = {
        "Id": tag_set_id,
        "Name": name,
        "Description": optional_str(data, "Description") or "",
        "SortOrder": sort_order if isinstance(sort_order, int) else len(in_space),
        "SpaceId": space_id,
        "Tags": [{key: tag[key] for key in TAG_FIELDS} for tag in tags],
        "LastModifiedOn": iso(store.now()),
        "Links": {
            "Self": f"/api/{space_id}/tagsets/{tag_set_id}",
            "Web": f"/app#/{space_id}/library/tagsets/{tag_set_id}",
        },
    }
    store.tag_sets[tag_set_id] = tag_set
    created_event(store, "Tag set", tag_set, user)
    return tag_set
