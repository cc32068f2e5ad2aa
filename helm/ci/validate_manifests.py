"""Check manifests rendered by `helm template` offline: Kubernetes schemas, then the chart's own promises.

    python validate_manifests.py RENDERED.yaml --kube-version 1.30 [--expect Kind=N ...] [--components A,B]
        [--rules-out PATH]

Runs in the tools venv of scripts/check-deploy (PyYAML and kubernetes-validate). Every manifest is checked
against the strict (no unknown fields) schema of that Kubernetes version; a kind without a built-in schema
fails, except the Prometheus Operator's ServiceMonitor (a CRD), which is reported as skipped and checked
by hand here. Then: secrets only by reference and only to the components that use them, hardened pods,
the intake's probes, the worker's grace period above the job timeout, the reconciler's command and
interval, the scheduler's command and Recreate strategy, the reconcile lookback below the dedupe window,
NetworkPolicies that let each component reach what it needs, the bundled Redis's durability settings.
Exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import base64
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import yaml

SECRET_ENV = (
    "CONDUCTOR_OCTOPUS_API_KEY",
    "CONDUCTOR_WEBHOOK_SECRET",
    "CONDUCTOR_REDIS_URL",
    "CONDUCTOR_NOTIFY_WEBHOOK_SECRET",
    "CONDUCTOR_SMTP_PASSWORD",
)
# Secrets the chart hands over as files of a Secret volume: the variable `<name>_FILE` names the file.
SECRET_FILES = ("CONDUCTOR_NOTIFY_WEBHOOK_SECRET", "CONDUCTOR_SMTP_PASSWORD")
NOTIFY_MOUNT = "/etc/conductor-notify"
# The Deployments running the conductor image, by their app.kubernetes.io/component label.
CONDUCTOR_COMPONENTS = ("intake", "worker", "reconciler", "scheduler")
# Components that call Octopus's REST API (and so need its URL, its API key and egress to it).
OCTOPUS_CLIENTS = ("worker", "reconciler", "scheduler")
CRD_WITHOUT_SCHEMA = {("monitoring.coreos.com/v1", "ServiceMonitor")}
REDIS_DURABILITY = {"--appendonly": "yes", "--appendfsync": "everysec", "--maxmemory-policy": "noeviction"}
RULES_PATH = "/etc/conductor/rules.yaml"
# The emptyDir every hardened container needs beside its read-only root filesystem (a path, not a temp file).
TMP_MOUNT = "/tmp"  # noqa: S108
OCTOPUS_CATEGORIES = (
    "MachineAdded",
    "MachineHealthy",
    "DeploymentSucceeded",
    "DeploymentFailed",
    "ManualInterventionInterruptionRaised",
)


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self, ok: bool, where: str, message: str) -> None:
        if not ok:
            self.problems.append(f"{where}: {message}")


def name_of(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def component_of(doc: dict[str, Any]) -> str | None:
    component = doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")
    return str(component) if component is not None else None


def validate_schemas(docs: list[dict[str, Any]], version: str, report: Report) -> list[str]:
    skipped = []
    for doc in docs:
        where = name_of(doc)
        if (doc.get("apiVersion"), doc.get("kind")) in CRD_WITHOUT_SCHEMA:
            skipped.append(where)
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            report.check(False, where, f"schema: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            report.check(False, where, f"schema: {error.message}")
    return skipped


def check_pod(doc: dict[str, Any], report: Report) -> None:
    """Hardening every workload of the chart promises: non-root, read-only, no privileges, resources."""
    where = name_of(doc)
    pod = doc["spec"]["template"]["spec"]
    report.check(pod.get("automountServiceAccountToken") is False, where, "automountServiceAccountToken is not false")
    context = pod.get("securityContext", {})
    report.check(context.get("runAsNonRoot") is True, where, "pod securityContext.runAsNonRoot is not true")
    report.check(isinstance(context.get("runAsUser"), int), where, "pod securityContext has no numeric runAsUser")
    report.check(
        context.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        where,
        "pod seccompProfile is not RuntimeDefault",
    )
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        at = f"{where} container {container['name']}"
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                report.check(resource in resources.get(part, {}), at, f"no resources.{part}.{resource}")
        security = container.get("securityContext", {})
        report.check(security.get("allowPrivilegeEscalation") is False, at, "allowPrivilegeEscalation is not false")
        report.check(security.get("readOnlyRootFilesystem") is True, at, "readOnlyRootFilesystem is not true")
        report.check(security.get("runAsNonRoot") is True, at, "runAsNonRoot is not true")
        report.check("ALL" in security.get("capabilities", {}).get("drop", []), at, "capabilities do not drop ALL")
        report.check(
            security.get("seccompProfile", {}).get("type") == "RuntimeDefault",
            at,
            "seccompProfile is not RuntimeDefault",
        )
        mounts = {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}
        report.check(TMP_MOUNT in mounts, at, "no writable /tmp mount beside the read-only root filesystem")


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def config_of(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The CONDUCTOR_* values a container gets from its ConfigMaps (envFrom)."""
    names = {source["configMapRef"]["name"] for source in container.get("envFrom", []) if "configMapRef" in source}
    values: dict[str, str] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] in names:
            values.update(doc.get("data", {}))
    return values


def check_conductor(
    doc: dict[str, Any], docs: list[dict[str, Any]], report: Report, expected_every: int | None = None
) -> None:
    where = name_of(doc)
    component = component_of(doc)
    template = doc["spec"]["template"]
    annotations = template["metadata"].get("annotations", {})
    for key in ("checksum/config", "checksum/rules"):
        report.check(len(annotations.get(key, "")) == 64, where, f"pod template has no {key} annotation")
    container = template["spec"]["containers"][0]
    env = env_of(container)
    config = config_of(docs, container)
    for name in SECRET_ENV:
        if name in env:
            item = env[name]
            report.check("value" not in item, where, f"{name} is rendered as a plain env value")
            report.check("secretKeyRef" in item.get("valueFrom", {}), where, f"{name} does not come from a Secret")
    report.check(
        "CONDUCTOR_REDIS_URL" in env or "CONDUCTOR_REDIS_URL" in config, where, "CONDUCTOR_REDIS_URL is not set"
    )
    args = container.get("args", [])
    dedupe = int(config.get("CONDUCTOR_DEDUPE_WINDOW_SECONDS", "604800"))
    lookback = int(config.get("CONDUCTOR_RECONCILE_LOOKBACK_SECONDS", "3600"))
    report.check(lookback < dedupe, where, f"reconcile lookback {lookback}s is not below the dedupe window {dedupe}s")
    if component != "intake":
        report.check("CONDUCTOR_WEBHOOK_SECRET" not in env, where, f"the {component} gets the webhook secret")
    mounted = {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}
    for name in SECRET_FILES:
        path = env.get(f"{name}_FILE", {}).get("value")
        report.check(f"{name}_FILE" not in config, where, f"{name}_FILE is in a ConfigMap, for every component")
        if path is None:
            continue
        # Only the workers deliver notifications; the file must be on the read-only notify mount.
        report.check(component == "worker", where, f"the {component} gets {name}_FILE")
        report.check(
            str(path).startswith(NOTIFY_MOUNT + "/") and mounted.get(NOTIFY_MOUNT, {}).get("readOnly") is True,
            where,
            f"{name}_FILE={path} is not on the read-only mount {NOTIFY_MOUNT}",
        )
    if component in OCTOPUS_CLIENTS and "CONDUCTOR_OCTOPUS_URL" in config:
        report.check("CONDUCTOR_OCTOPUS_API_KEY" in env, where, f"the {component} gets no Octopus API key")
    if component == "intake":
        report.check(args[:1] == ["serve"] and "0.0.0.0" in args, where, f"intake args are {args}")
        report.check("CONDUCTOR_WEBHOOK_SECRET" in env, where, "the intake gets no webhook secret")
        report.check("CONDUCTOR_OCTOPUS_API_KEY" not in env, where, "the intake gets the Octopus API key")
        liveness = container.get("livenessProbe", {}).get("httpGet", {})
        readiness = container.get("readinessProbe", {}).get("httpGet", {})
        report.check(liveness.get("path") == "/healthz", where, "liveness probe is not GET /healthz")
        report.check(readiness.get("path") == "/readyz", where, "readiness probe is not GET /readyz")
    if component != "intake":
        # Only the intake listens: the others have no port to declare or to probe over HTTP.
        report.check(not container.get("ports"), where, f"the {component} declares ports")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            report.check("httpGet" not in container.get(probe, {}), where, f"the {component} has an HTTP {probe}")
    if component == "worker":
        report.check(args == ["worker"], where, f"worker args are {args}")
        timeout = int(config.get("CONDUCTOR_JOB_TIMEOUT_SECONDS", "30"))
        grace = template["spec"].get("terminationGracePeriodSeconds", 30)
        report.check(
            grace > timeout, where, f"terminationGracePeriodSeconds {grace} is not above the job timeout {timeout}"
        )
    if component == "reconciler":
        every = args[2] if len(args) == 3 and args[:2] == ["reconcile", "--every"] else None
        report.check(every is not None, where, f"reconciler args are {args}, expected reconcile --every SECONDS")
        if every is not None:
            report.check(
                every.isdigit() and 0 < int(every) < dedupe,
                where,
                f"--every {every!r} is not a whole number of seconds between 0 and the dedupe window {dedupe}s",
            )
            if expected_every is not None:
                report.check(every == str(expected_every), where, f"--every is {every}, expected {expected_every}")
    if component == "scheduler":
        report.check(args == ["scheduler"], where, f"scheduler args are {args}")
        strategy = doc["spec"].get("strategy", {}).get("type")
        report.check(strategy == "Recreate", where, f"scheduler strategy is {strategy}, expected Recreate")
    if component in ("reconciler", "scheduler"):
        # Both are deployed only with Octopus configured: they would exit at once without it.
        report.check("CONDUCTOR_OCTOPUS_URL" in config, where, f"the {component} gets no CONDUCTOR_OCTOPUS_URL")
    rules_mounted = any(
        mount["mountPath"] == RULES_PATH.rsplit("/", 1)[0] and mount.get("readOnly") is True
        for mount in container.get("volumeMounts", [])
    )
    if "CONDUCTOR_RULES" in config:
        report.check(config["CONDUCTOR_RULES"] == RULES_PATH, where, "CONDUCTOR_RULES points elsewhere")
        report.check(rules_mounted, where, "CONDUCTOR_RULES is set but the rules are not mounted read-only")


def check_redis(doc: dict[str, Any], report: Report) -> None:
    where = name_of(doc)
    spec = doc["spec"]
    container = spec["template"]["spec"]["containers"][0]
    args = [str(arg) for arg in container.get("args", [])]
    for flag, value in REDIS_DURABILITY.items():
        given = args[args.index(flag) + 1] if flag in args[:-1] else None
        report.check(given == value, where, f"redis-server {flag} is {given!r}, expected {value!r}")
    report.check(
        container["image"].startswith(("redis:", "docker.io/redis:", "docker.io/library/redis:")),
        where,
        f"image {container['image']} is not the official redis image",
    )
    probe = " ".join(container.get("readinessProbe", {}).get("exec", {}).get("command", []))
    report.check("redis-cli" in probe and "ping" in probe, where, "readiness probe is not redis-cli ping")
    context = spec["template"]["spec"].get("securityContext", {})
    report.check(context.get("runAsUser") == 999 and context.get("fsGroup") == 999, where, "not UID/fsGroup 999")
    claims = spec.get("volumeClaimTemplates", [])
    report.check(len(claims) == 1 and claims[0]["metadata"]["name"] == "data", where, "no data volumeClaimTemplate")
    report.check(
        any(mount["mountPath"] == "/data" for mount in container.get("volumeMounts", [])), where, "/data not mounted"
    )


def selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """Whether a podSelector (matchLabels only, as the chart writes them) selects pods with these labels."""
    match = selector.get("matchLabels", {})
    return bool(match) and match.items() <= labels.items()


def rule_ports(rules: list[dict[str, Any]]) -> set[int]:
    return {port["port"] for rule in rules for port in rule.get("ports", []) if isinstance(port.get("port"), int)}


def check_network_policies(docs: list[dict[str, Any]], report: Report) -> None:
    """With NetworkPolicies on: each conductor pod is selected by one, may reach DNS, Redis and (all but the
    intake) Octopus, serves nothing unless it is the intake, and the bundled Redis admits it."""
    policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]
    if not policies:
        return
    redis = [doc for doc in docs if doc["kind"] == "StatefulSet" and component_of(doc) == "redis"]
    redis_ports = (
        {port["containerPort"] for port in redis[0]["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
        if redis
        else set()
    )
    for doc in docs:
        if doc["kind"] != "Deployment" or component_of(doc) not in CONDUCTOR_COMPONENTS:
            continue
        where = name_of(doc)
        component = component_of(doc)
        labels = doc["spec"]["template"]["metadata"].get("labels", {})
        mine = [policy for policy in policies if selects(policy["spec"].get("podSelector", {}), labels)]
        report.check(bool(mine), where, "no NetworkPolicy selects its pods")
        if not mine:
            continue
        egress = rule_ports([rule for policy in mine for rule in policy["spec"].get("egress", [])])
        report.check(53 in egress, where, "NetworkPolicy egress does not allow DNS (port 53)")
        if redis_ports:
            report.check(
                redis_ports <= egress, where, f"NetworkPolicy egress does not allow Redis {sorted(redis_ports)}"
            )
        container = doc["spec"]["template"]["spec"]["containers"][0]
        octopus_url = config_of(docs, container).get("CONDUCTOR_OCTOPUS_URL")
        if component in OCTOPUS_CLIENTS and octopus_url:
            parts = urlsplit(octopus_url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            report.check(port in egress, where, f"NetworkPolicy egress does not allow Octopus (port {port})")
        if component != "intake":
            ingress = [rule for policy in mine for rule in policy["spec"].get("ingress", [])]
            report.check(not ingress, where, f"NetworkPolicy lets traffic in to the {component}, which serves nothing")
        for server in redis:
            admitted = any(
                selects(peer.get("podSelector", {}), labels) and "namespaceSelector" not in peer
                for policy in policies
                if selects(policy["spec"].get("podSelector", {}), server["spec"]["template"]["metadata"]["labels"])
                for rule in policy["spec"].get("ingress", [])
                for peer in rule.get("from", [])
            )
            report.check(admitted, where, f"the bundled Redis's NetworkPolicy does not admit the {component}")


def check_secrets_not_leaked(docs: list[dict[str, Any]], report: Report) -> None:
    """No value of a rendered Secret appears in a ConfigMap or a plain env value."""
    secret_values = {
        base64.b64decode(value).decode()
        for doc in docs
        if doc["kind"] == "Secret"
        for value in doc.get("data", {}).values()
    }
    for doc in docs:
        where = name_of(doc)
        if doc["kind"] == "ConfigMap":
            for key, value in doc.get("data", {}).items():
                report.check(key not in SECRET_ENV or key == "CONDUCTOR_REDIS_URL", where, f"{key} in a ConfigMap")
                report.check(value not in secret_values, where, f"{key} holds a Secret's value")
                if key == "CONDUCTOR_REDIS_URL":
                    report.check("@" not in value, where, "a Redis URL with credentials in a ConfigMap")
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for item in container.get("env", []):
                    report.check(
                        item.get("value") not in secret_values, where, f"env {item['name']} holds a Secret's value"
                    )


def check_service_monitor(doc: dict[str, Any], docs: list[dict[str, Any]], report: Report) -> None:
    """By hand, since no schema ships for this CRD: it must scrape /metrics on a port the intake Service has."""
    where = name_of(doc)
    endpoints = doc["spec"].get("endpoints", [])
    report.check(any(item.get("path") == "/metrics" for item in endpoints), where, "no /metrics endpoint")
    selector = doc["spec"].get("selector", {}).get("matchLabels", {})
    ports = {
        port.get("name")
        for service in docs
        if service["kind"] == "Service" and selector.items() <= service["metadata"].get("labels", {}).items()
        for port in service["spec"]["ports"]
    }
    for item in endpoints:
        report.check(item.get("port") in ports, where, f"port {item.get('port')!r} is on no selected Service")


def check_settings_reach_pods(docs: list[dict[str, Any]], settings_env: list[str], report: Report) -> None:
    """Every CONDUCTOR_* setting of service/settings.py is given to a conductor container."""
    given: set[str] = set()
    for doc in docs:
        if doc["kind"] == "Deployment" and component_of(doc) in CONDUCTOR_COMPONENTS:
            container = doc["spec"]["template"]["spec"]["containers"][0]
            given |= set(env_of(container)) | set(config_of(docs, container))
    for name in settings_env:
        # A secret handed over as a file counts for its variable, and the other way round.
        twins = (
            {name, f"{name}_FILE", name.removesuffix("_FILE")} if name.removesuffix("_FILE") in SECRET_FILES else {name}
        )
        report.check(bool(twins & given), "settings", f"{name} (service/settings.py) reaches no conductor container")


def check_components(docs: list[dict[str, Any]], expected: str, report: Report) -> None:
    """The conductor Deployments rendered are exactly these components (a count of Deployments cannot tell
    which one is missing)."""
    rendered = sorted(
        str(component_of(doc))
        for doc in docs
        if doc["kind"] == "Deployment" and component_of(doc) in CONDUCTOR_COMPONENTS
    )
    wanted = sorted(name for name in expected.split(",") if name)
    report.check(rendered == wanted, "render", f"conductor Deployments are {rendered}, expected {wanted}")


def check_expected_kinds(docs: list[dict[str, Any]], expected: list[str], report: Report) -> None:
    counts = Counter(doc["kind"] for doc in docs)
    for item in expected:
        kind, _, number = item.partition("=")
        report.check(counts[kind] == int(number), "render", f"expected {number} {kind}, found {counts[kind]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", type=Path)
    parser.add_argument("--kube-version", required=True)
    parser.add_argument("--expect", action="append", default=[], metavar="KIND=N")
    parser.add_argument("--notes", type=Path, help="rendered NOTES.txt to check for the subscription settings")
    parser.add_argument(
        "--settings-env", type=Path, help="file naming each CONDUCTOR_* setting, one a line; each must be set"
    )
    parser.add_argument("--rules-out", type=Path, help="write the rendered rules file here, if there is one")
    parser.add_argument(
        "--components", help="comma-separated: exactly the conductor Deployments to expect, by component label"
    )
    parser.add_argument("--reconciler-every", type=int, help="the --every the reconciler must be rendered with")
    args = parser.parse_args()

    docs = [doc for doc in yaml.safe_load_all(args.manifests.read_text()) if doc]
    report = Report()
    skipped = validate_schemas(docs, args.kube_version, report)
    check_expected_kinds(docs, args.expect, report)
    if args.components is not None:
        check_components(docs, args.components, report)
    check_secrets_not_leaked(docs, report)
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            check_pod(doc, report)
        if doc["kind"] == "Deployment" and component_of(doc) in CONDUCTOR_COMPONENTS:
            check_conductor(doc, docs, report, args.reconciler_every)
        if doc["kind"] == "StatefulSet" and component_of(doc) == "redis":
            check_redis(doc, report)
        if doc["kind"] == "ServiceMonitor":
            check_service_monitor(doc, docs, report)
        if doc["kind"] == "ConfigMap" and "rules.yaml" in doc.get("data", {}) and args.rules_out:
            args.rules_out.write_text(doc["data"]["rules.yaml"])
    check_network_policies(docs, report)
    reconcilers = [doc for doc in docs if doc["kind"] == "Deployment" and component_of(doc) == "reconciler"]
    schedulers = [doc for doc in docs if doc["kind"] == "Deployment" and component_of(doc) == "scheduler"]
    if args.reconciler_every is not None:
        report.check(bool(reconcilers), "render", "no reconciler Deployment, though --reconciler-every was given")
    if args.settings_env:
        check_settings_reach_pods(docs, args.settings_env.read_text().split(), report)
    if args.notes:
        notes = args.notes.read_text()
        for needed in ("/webhooks/octopus", "WebhookHeaderKey", "WebhookHeaderValue", "kubectl", *OCTOPUS_CATEGORIES):
            report.check(needed in notes, "NOTES.txt", f"does not mention {needed}")
        report.check("reconciler:" in notes, "NOTES.txt", "does not say whether the reconciler runs")
        report.check("scheduler:" in notes, "NOTES.txt", "does not say whether the scheduler runs")
        for doc in reconcilers + schedulers:
            report.check(doc["metadata"]["name"] in notes, "NOTES.txt", f"does not name {name_of(doc)}")

    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(Counter(doc["kind"] for doc in docs).items()))
    print(f"   {len(docs)} manifests ({kinds})")
    print(f"   schemas: Kubernetes {args.kube_version}, strict; {len(docs) - len(skipped)} checked")
    for where in skipped:
        print(f"   skipped schema of {where}: a CRD (monitoring.coreos.com/v1), no built-in schema; checked by hand")
    for problem in report.problems:
        print(f"   FAIL {problem}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
