"""Build information: what a build server pushes per package id and version (commits, work items), and
the copy a release takes of the build information of its packages when it is created."""

from __future__ import annotations

from simulator.audit import write_event
from simulator.errors import bad_request
from simulator.store import Doc, Store
from simulator.timeutil import iso
from simulator.validation import body_object, optional_str, required_str

OVERWRITE_MODES = ("FailIfExists", "OverwriteExisting", "IgnoreIfExists")
_FIELDS = ("BuildEnvironment", "BuildNumber", "BuildUrl", "Branch", "VcsType", "VcsRoot", "VcsCommitNumber")


def _details(raw: object, kind: str, text_field: str) -> list[Doc]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise bad_request(f"OctopusBuildInformation.{kind} must be a list of objects.")
    return [
        {"Id": str(item.get("Id") or ""), "LinkUrl": item.get("LinkUrl"), text_field: item.get(text_field) or ""}
        for item in raw
    ]


def find_build_information(store: Store, space_id: str, package_id: str, version: str) -> Doc | None:
    for doc in store.build_information.values():
        if (doc["SpaceId"], doc["PackageId"].lower(), doc["Version"]) == (space_id, package_id.lower(), version):
            return doc
    return None


def push_build_information(store: Store, space_id: str, body: object, overwrite_mode: str, user: Doc) -> Doc:
    """POST build-information: {PackageId, Version, OctopusBuildInformation: {...}}."""
    if overwrite_mode not in OVERWRITE_MODES:
        raise bad_request(f"The overwriteMode must be one of: {', '.join(OVERWRITE_MODES)}.")
    data = body_object(body)
    package_id = required_str(data, "PackageId")
    version = required_str(data, "Version")
    build = data.get("OctopusBuildInformation")
    if not isinstance(build, dict):
        raise bad_request("The OctopusBuildInformation field is required.")
    existing = find_build_information(store, space_id, package_id, version)
    if existing is not None and overwrite_mode == "IgnoreIfExists":
        return existing
    if existing is not None and overwrite_mode == "FailIfExists":
        raise bad_request(f"Build information for package '{package_id}' version '{version}' already exists.")
    doc_id = existing["Id"] if existing is not None else store.next_id("BuildInformation")
    doc: Doc = {
        "Id": doc_id,
        "SpaceId": space_id,
        "PackageId": package_id,
        "Version": version,
        **{name: optional_str(build, name) for name in _FIELDS},
        # The issue tracker's work items come from commit messages in Octopus; here the pusher lists them.
        "IssueTrackerId": optional_str(build, "IssueTrackerId"),
        "VcsCommitUrl": optional_str(build, "VcsCommitUrl"),
        "Commits": _details(build.get("Commits"), "Commits", "Comment"),
        "WorkItems": _details(build.get("WorkItems"), "WorkItems", "Description"),
        "IncompleteDataWarning": None,
        "Created": iso(store.now()),
        "Links": {"Self": f"/api/{space_id}/build-information/{doc_id}"},
    }
    store.build_information[doc_id] = doc
    write_event(
        store,
        category="Created",
        message=["Build information for ", package_id, f" {version} was pushed"],
        related=[doc_id],
        space_id=space_id,
        user=user,
    )
    return doc


def release_packages(process: Doc, version: str, selected: list[Doc]) -> list[Doc]:
    """SelectedPackages of a new release: the versions asked for, else the release's own version (the
    simulator's choice), for every package an action of the process uses."""
    chosen = {(p.get("ActionName"), p.get("PackageReferenceName") or ""): p.get("Version") for p in selected}
    packages = []
    for step in process["Steps"]:
        for action in step["Actions"]:
            for package in action.get("Packages") or []:
                reference = package.get("Name") or ""
                packages.append(
                    {
                        "ActionName": action["Name"],
                        "PackageReferenceName": reference,
                        "Version": chosen.get((action["Name"], reference)) or version,
                        "PackageId": package.get("PackageId"),
                    }
                )
    return packages


def release_build_information(store: Store, space_id: str, packages: list[Doc]) -> list[Doc]:
    """ReleasePackageVersionBuildInformationResource for each package whose version has build information."""
    found: list[Doc] = []
    for package in packages:
        doc = find_build_information(store, space_id, str(package["PackageId"] or ""), str(package["Version"]))
        if doc is not None and all(entry["Id"] != doc["Id"] for entry in found):
            found.append(
                {key: doc[key] for key in ("Id", "PackageId", "Version", *_FIELDS, "VcsCommitUrl", "IssueTrackerId")}
                | {"Commits": list(doc["Commits"]), "WorkItems": list(doc["WorkItems"])}
            )
    return found
