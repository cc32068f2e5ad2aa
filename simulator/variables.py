"""Project variable sets and their prompted variables: the form a deployment shows and the values it needs.

Octopus keeps a project's variables in `variableset-Projects-n`; a variable with a `Prompt` is asked for at
deployment time and its value is sent in `FormValues` under the variable's id (the form element's `Name`)."""

from __future__ import annotations

import uuid

from simulator.errors import bad_request
from simulator.store import Doc, Store
from simulator.validation import body_object, optional_bool, optional_str, required_str

SCOPE_NAMES = ("Environment", "Machine", "Role", "Action", "Channel", "TenantTag", "ProcessOwner")


def create_variable_set(store: Store, space_id: str, project_id: str) -> Doc:
    variable_set_id = f"variableset-{project_id}"
    variable_set: Doc = {
        "Id": variable_set_id,
        "OwnerId": project_id,
        "SpaceId": space_id,
        "Version": 0,
        "Variables": [],
        "Links": {"Self": f"/api/{space_id}/variables/{variable_set_id}"},
    }
    store.variable_sets[variable_set_id] = variable_set
    return variable_set


def _reference(doc: Doc) -> Doc:
    return {"Id": doc["Id"], "Name": doc["Name"]}


def render_variable_set(store: Store, variable_set: Doc) -> Doc:
    """VariableSetResource: sensitive values are never returned; ScopeValues name what scopes may use."""
    space_id = variable_set["SpaceId"]
    project = store.projects[variable_set["OwnerId"]]
    process = store.processes[project["DeploymentProcessId"]]
    machines = [m for m in store.machines.values() if m["SpaceId"] == space_id]
    environments = sorted(
        (e for e in store.environments.values() if e["SpaceId"] == space_id), key=lambda e: (e["SortOrder"], e["Id"])
    )
    variables = [{**v, "Value": None if v["IsSensitive"] else v["Value"]} for v in variable_set["Variables"]]
    return {
        **variable_set,
        "Variables": variables,
        "ScopeValues": {
            "Environments": [_reference(e) for e in environments],
            "Machines": [_reference(m) for m in machines],
            "Roles": [{"Id": r, "Name": r} for r in sorted({r for m in machines for r in m["Roles"]})],
            "Actions": [_reference(a) for step in process["Steps"] for a in step["Actions"]],
            "Channels": [_reference(c) for c in store.channels.values() if c["ProjectId"] == project["Id"]],
            "TenantTags": [
                {"Id": t["CanonicalTagName"], "Name": t["CanonicalTagName"]}
                for s in store.tag_sets.values()
                if s["SpaceId"] == space_id
                for t in s["Tags"]
            ],
            "Processes": [{"Id": project["Id"], "Name": project["Name"], "ProcessType": "Deployment"}],
        },
    }


def _scope(raw: object, name: str) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request(f"The Scope of variable '{name}' must be an object.")
    scope: dict[str, list[str]] = {}
    for key, values in raw.items():
        if key not in SCOPE_NAMES:
            raise bad_request(f"The scope '{key}' of variable '{name}' is not one of: {', '.join(SCOPE_NAMES)}.")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise bad_request(f"The {key} scope of variable '{name}' must be a list of strings.")
        if values:
            scope[key] = list(dict.fromkeys(values))
    return scope


def _prompt(raw: object, name: str) -> Doc | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request(f"The Prompt of variable '{name}' must be an object.")
    settings = raw.get("DisplaySettings") or {}
    if not isinstance(settings, dict):
        raise bad_request(f"The Prompt.DisplaySettings of variable '{name}' must be an object.")
    return {
        "Label": optional_str(raw, "Label") or "",
        "Description": optional_str(raw, "Description") or "",
        "Required": optional_bool(raw, "Required", False),
        "DisplaySettings": {str(k): v for k, v in settings.items()},
    }


def _variable(raw: object, previous: dict[str, Doc]) -> Doc:
    if not isinstance(raw, dict):
        raise bad_request("Each variable must be an object.")
    name = required_str(raw, "Name")
    variable_id = optional_str(raw, "Id") or str(uuid.uuid4())
    sensitive = optional_bool(raw, "IsSensitive", False) or raw.get("Type") == "Sensitive"
    value = raw.get("Value")
    if value is not None and not isinstance(value, str):
        raise bad_request(f"The Value of variable '{name}' must be a string.")
    if value is None and sensitive and variable_id in previous:
        # Sensitive values are write-only: sending null keeps the stored one, as Octopus does.
        value = previous[variable_id]["Value"]
    return {
        "Id": variable_id,
        "Name": name,
        "Value": value,
        "Description": optional_str(raw, "Description"),
        "Scope": _scope(raw.get("Scope"), name),
        "IsEditable": True,
        "Prompt": _prompt(raw.get("Prompt"), name),
        "Type": "Sensitive" if sensitive else "String",
        "IsSensitive": sensitive,
    }


def update_variable_set(store: Store, variable_set: Doc, body: object) -> Doc:
    """PUT a variable set: `Version` must match (someone else may have changed it), variables get ids."""
    data = body_object(body)
    version = data.get("Version")
    if version is not None and version != variable_set["Version"]:
        raise bad_request(
            "The variable set has been modified by someone else since you loaded it. Reload and try again."
        )
    raw_variables = data.get("Variables") or []
    if not isinstance(raw_variables, list):
        raise bad_request("Variables must be a list.")
    previous = {v["Id"]: v for v in variable_set["Variables"]}
    variables = [_variable(raw, previous) for raw in raw_variables]
    ids = [v["Id"] for v in variables]
    if len(set(ids)) != len(ids):
        raise bad_request("Variable ids must be unique within a variable set.")
    variable_set["Variables"] = variables
    variable_set["Version"] += 1
    return variable_set


def _in_scope(variable: Doc, environment_id: str | None) -> bool:
    environments = variable["Scope"].get("Environment")
    return environment_id is None or not environments or environment_id in environments


def prompted_variables(store: Store, project: Doc, environment_id: str | None) -> list[Doc]:
    """The project's prompted variables for an environment (all of them when no environment is given)."""
    variable_set = store.variable_sets.get(project["VariableSetId"])
    if variable_set is None:
        return []
    return [v for v in variable_set["Variables"] if v["Prompt"] is not None and _in_scope(v, environment_id)]


def prompt_form(store: Store, project: Doc, environment_id: str | None) -> Doc:
    """The Form of a preview or template: one VariableValue element per prompted variable."""
    values: dict[str, str] = {}
    elements: list[Doc] = []
    for variable in prompted_variables(store, project, environment_id):
        prompt = variable["Prompt"]
        if variable["Value"] is not None and not variable["IsSensitive"]:
            values[variable["Id"]] = variable["Value"]
        elements.append(
            {
                "Name": variable["Id"],
                "Control": {
                    "Type": "VariableValue",
                    "Name": variable["Name"],
                    "Label": prompt["Label"],
                    "Description": prompt["Description"],
                    "Required": prompt["Required"],
                    "DisplaySettings": prompt["DisplaySettings"],
                },
                "IsValueRequired": prompt["Required"],
            }
        )
    return {"Values": values, "Elements": elements}


def missing_prompts(store: Store, project: Doc, environment_id: str, form_values: Doc) -> list[str]:
    """One error per required prompted variable without a value in FormValues."""
    errors = []
    for variable in prompted_variables(store, project, environment_id):
        value = form_values.get(variable["Id"])
        if variable["Prompt"]["Required"] and (not isinstance(value, str) or not value.strip()):
            label = variable["Prompt"]["Label"] or variable["Name"]
            errors.append(
                f"Please provide a value for the required variable '{label}' ({variable['Name']}): "
                f"FormValues['{variable['Id']}']."
            )
    return errors
