"""Release version patterns: wildcards on a version, optionally derived from the parent release's version.

A pattern is an `fnmatch` wildcard (`2021.1.0.*`). A pattern template may name the parent (orchestration)
release's version: `{parent}` is the whole version, `{parent:N}` its first N dot-separated parts, so
`{parent:3}.*` is `2021.3.0.*` for the parent's 2021.3.0.1.
"""

from __future__ import annotations

import fnmatch
import re

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PARENT = re.compile(r"parent(?::([1-9][0-9]*))?")


class PatternError(ValueError):
    """A pattern template that cannot be read; the message says what is wrong."""


def check_template(template: str) -> None:
    """Raise PatternError unless every `{...}` in `template` is `{parent}` or `{parent:N}`."""
    for placeholder in _PLACEHOLDER.findall(template):
        if _PARENT.fullmatch(placeholder) is None:
            raise PatternError(
                f"unknown placeholder {{{placeholder}}}: use {{parent}} or {{parent:N}}, e.g. {{parent:3}}.*"
            )
    if template.count("{") != template.count("}") or "{}" in template:
        raise PatternError("unbalanced or empty braces: use {parent} or {parent:N}")


def is_template(template: str) -> bool:
    return _PLACEHOLDER.search(template) is not None


def derive_pattern(template: str, parent_version: str) -> str | None:
    """The wildcard for this parent version, or None when the version has fewer parts than the template asks."""
    parts = parent_version.split(".")
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        parent = _PARENT.fullmatch(match.group(1))
        assert parent is not None, "check_template first"
        count = int(parent.group(1)) if parent.group(1) else len(parts)
        if count > len(parts):
            missing = True
            return ""
        return ".".join(parts[:count])

    derived = _PLACEHOLDER.sub(fill, template)
    return None if missing else derived


def version_matches(version: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase(version, pattern)
