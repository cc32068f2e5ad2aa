"""The release notes of a promotion, in Markdown: the plan (component, release, from, what is done and why) and
each deployed component's notes, so that the approvers read them in the parent's task before they approve.

A component's notes are, as the step template gathers them (octopus-api.md §3.7, §8.1): when its release has
build information, the deployment preview's `Changes` (every release between what the destination has and the
chosen one, with its notes, packages, work items and commits); otherwise the release's own `ReleaseNotes`
and its packages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from workers.directory import Doc
from workers.rules import Orchestration

if TYPE_CHECKING:
    from workers.promotion_choice import ComponentChoice


def component_notes(*, project: str, release: Doc, preview: Doc, from_version: str | None) -> str:
    """One component's section of the release notes."""
    since = f" (from {from_version})" if from_version else ""
    lines = [f"### {project} {release['Version']}{since}", ""]
    changes = [change for change in preview.get("Changes") or [] if isinstance(change, dict)]
    if release.get("BuildInformation") and changes:
        for change in changes:
            lines += [f"#### {change.get('Version', '')}", ""]
            lines += _release_body(change, change.get("BuildInformation") or [])
    else:
        lines += _release_body(release, release.get("BuildInformation") or [])
        lines += _selected_packages(release) if not release.get("BuildInformation") else []
    return "\n".join(lines).rstrip() + "\n"


def plan_notes(
    choices: list[ComponentChoice],
    *,
    orchestration: Orchestration,
    parent_release_version: str | None,
    destination: str,
    tenant: str | None,
) -> str:
    """The Markdown the conductor submits at "Plan the release": the plan, then the combined release notes.
    Without a parent release (a promotion on demand) the heading names the orchestration."""
    for_tenant = f" for {tenant}" if tenant else ""
    if parent_release_version is None:
        heading = f"## {orchestration.name} to {destination}{for_tenant}, on demand"
    else:
        parent = orchestration.parent_project or orchestration.name
        heading = f"## {parent} {parent_release_version} to {destination}{for_tenant}"
    lines = [
        heading,
        "",
        "| # | Component | Release | From | Plan |",
        "|---|---|---|---|---|",
    ]
    for number, choice in enumerate(choices, start=1):
        cells = [str(number), choice.project, choice.release_version or "", choice.from_version or "", _plan(choice)]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    sections = [choice.notes_markdown for choice in choices if choice.action == "deploy" and choice.notes_markdown]
    lines += ["", "## Release notes", ""]
    lines += [section.rstrip() + "\n" for section in sections] if sections else ["Nothing is deployed.", ""]
    return "\n".join(lines).rstrip() + "\n"


def _plan(choice: ComponentChoice) -> str:
    if choice.action == "deploy":
        source = f" (from {choice.source_environment})" if choice.source_environment else ""
        return f"deploy{source}" + (f"; warning: {choice.reason}" if choice.reason else "")
    if choice.action == "fail":
        return f"**fails**: {choice.reason or 'no reason given'}"
    return ("skip; **warning**: " if choice.warning else "skip: ") + (choice.reason or "")


def _release_body(release: Doc, build_information: Iterable[Doc]) -> list[str]:
    lines: list[str] = []
    notes = str(release.get("ReleaseNotes") or "").strip()
    if notes:
        lines += [notes, ""]
    builds = [build for build in build_information if isinstance(build, dict)]
    packages = [_build_package(build) for build in builds]
    work_items = [item for build in builds for item in build.get("WorkItems") or []]
    commits = [commit for build in builds for commit in build.get("Commits") or []]
    lines += _bullets(release.get("WorkItems") or work_items, "Work items", _work_item)
    lines += _bullets(release.get("Commits") or commits, "Commits", _commit)
    if packages:
        lines += [f"Packages: {', '.join(packages)}", ""]
    return lines


def _selected_packages(release: Doc) -> list[str]:
    packages = [
        f"{item.get('ActionName') or item.get('StepName') or 'package'}"
        + (f" ({item['PackageReferenceName']})" if item.get("PackageReferenceName") else "")
        + f" {item.get('Version', '')}".rstrip()
        for item in release.get("SelectedPackages") or []
        if isinstance(item, dict)
    ]
    return [f"Packages: {', '.join(packages)}", ""] if packages else []


def _build_package(build: Doc) -> str:
    number = f" (build {build['BuildNumber']})" if build.get("BuildNumber") else ""
    return f"{build.get('PackageId', '')} {build.get('Version', '')}".strip() + number


def _bullets(items: Iterable[Doc], title: str, line: Callable[[Doc], str]) -> list[str]:
    rendered = list(dict.fromkeys(line(item) for item in items if isinstance(item, dict)))
    return [f"{title}:", "", *[f"- {text}" for text in rendered], ""] if rendered else []


def _work_item(item: Doc) -> str:
    return _labelled(_link(str(item.get("Id", "")), item.get("LinkUrl")), item.get("Description"))


def _commit(commit: Doc) -> str:
    commit_id = str(commit.get("Id", ""))
    short = (
        commit_id[:7] if len(commit_id) >= 12 and all(c in "0123456789abcdefABCDEF" for c in commit_id) else commit_id
    )
    return _labelled(_link(short, commit.get("LinkUrl")), commit.get("Comment"))


def _labelled(label: str, text: object) -> str:
    first = _first_line(text)
    return f"{label}: {first}" if first else label


def _link(text: str, url: object) -> str:
    return f"[{text}]({url})" if isinstance(url, str) and url else text


def _first_line(text: object) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
