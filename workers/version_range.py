"""Octopus release versions compared with version ranges, by the `packaging` library (PEP 440 ordering).

Octopus versions are SemVer-like (`Year.Minor.Patch.Build`, e.g. `2021.3.0.1`, or `1.2.0-beta.1`); `packaging`
reads those as versions (`1.2.0-beta.1` as the pre-release `1.2.0b1`). A range is a `SpecifierSet`, e.g.
`>=2021.3.0` or `>=2021.3.0,<2022`. Pre-releases are compared by their place in the order like any other
version: `>=2021.2` admits `2021.4.0-beta1`, and `>=2021.3.0` does not admit `2021.3.0-beta1`.
"""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


class UnreadableVersion(ValueError):
    """A release version `packaging` cannot read, so no range can be said to hold for it."""


def parse_range(text: str) -> SpecifierSet:
    """The range a rules file names; ValueError with an example when it is not one."""
    if not text.strip():
        raise ValueError("give a version range, e.g. '>=2021.3.0'")
    try:
        found = SpecifierSet(text)
    except InvalidSpecifier:
        hint = f"'>={text.strip()}'" if _is_version(text.strip()) else "'>=2021.3.0' or '>=2021.3.0,<2022'"
        raise ValueError(f"{text!r} is not a version range; write for example {hint}") from None
    return found


def satisfies(version: str, allowed: SpecifierSet) -> bool:
    """Whether a release version lies in the range; UnreadableVersion when `packaging` cannot read it."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise UnreadableVersion(f"{version!r} is not a version that can be compared with {allowed}") from None
    return allowed.contains(parsed, prereleases=True)


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True
