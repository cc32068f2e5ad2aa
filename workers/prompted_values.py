"""A component deployment's prompted variables: `FormValues` from the deployment preview's form (octopus-api.md §8.2).

Each prompted variable is a form element whose `Control.Name` is the variable's name; the deployment sends
its value under the element's `Name`. The value is the rules' (`form_values`, by variable name), else the
parent deployment's value of a variable of the same name. A required one with neither, and no default in the
form, cannot be deployed.
"""

from __future__ import annotations

from collections.abc import Mapping

from workers.directory import Doc


class MissingValues(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def form_values(form: Doc | None, rules: Mapping[str, str], parent: Mapping[str, str]) -> dict[str, str]:
    """Element Name → value for every prompted variable that has one; raises MissingValues naming the rest."""
    by_rules = {name.casefold(): value for name, value in rules.items()}
    by_parent = {name.casefold(): value for name, value in parent.items()}
    defaults = (form or {}).get("Values") or {}
    values: dict[str, str] = {}
    missing: list[str] = []
    for element in (form or {}).get("Elements") or []:
        control = element.get("Control") or {}
        variable = control.get("Name")
        if not isinstance(variable, str) or not variable:
            continue  # not a prompted variable (a paragraph, a button)
        value = by_rules.get(variable.casefold(), by_parent.get(variable.casefold()))
        if value is not None:
            values[str(element["Name"])] = value
        elif (element.get("IsValueRequired") or control.get("Required")) and not defaults.get(element["Name"]):
            missing.append(variable)
    if missing:
        raise MissingValues(missing)
    return values
