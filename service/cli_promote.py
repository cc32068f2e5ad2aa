"""`conductor promote ORCHESTRATION --to ENV [--from ENV] [--tenant T] [--what-if]`: a promotion on demand.

It shows the plan first (each component's release, from what, or why not, and the release notes); with
`--what-if` it stops there and Octopus is not touched. Otherwise it queues the plan for the workers, which
deploy it component after component; `conductor status` and `GET /promotions/{id}` follow it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from service.settings import Settings

if TYPE_CHECKING:
    from workers.octopus import OctopusClient
    from workers.rules import Rules


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    promote = commands.add_parser(
        "promote",
        help="promote every component of an orchestration to an environment, in order (shows the plan first)",
        description="Plans a promotion with no parent deployment: each component's release, chosen as at 'Plan "
        "the release', deployed in the rules' order by the workers. Nothing is approved on anyone's behalf: "
        "the components' manual interventions wait for people.",
    )
    promote.add_argument("orchestration", help="the orchestration's name in the rules")
    promote.add_argument("--to", required=True, metavar="ENV", help="the destination environment")
    promote.add_argument("--from", dest="source", metavar="ENV", help="promote from here (default: the lifecycle)")
    promote.add_argument("--tenant", metavar="TENANT", help="promote for this tenant")
    promote.add_argument("--what-if", action="store_true", help="show the plan, deploy nothing")


def rules_and_octopus(settings: Settings, command: str) -> tuple[Rules, OctopusClient] | None:
    """What planning a promotion needs from the settings; None, having said what to set, without them."""
    from workers.rules import RulesError

    try:
        rules = settings.load_rules()
    except RulesError as error:
        print(f"conductor {command}: {error}", file=sys.stderr)
        return None
    client = settings.octopus_client()
    if rules is None or client is None:
        print(
            f"conductor {command}: set CONDUCTOR_RULES (the rules file) and CONDUCTOR_OCTOPUS_URL and "
            "CONDUCTOR_OCTOPUS_API_KEY (the service account) first",
            file=sys.stderr,
        )
        return None
    return rules, client


def promote(args: argparse.Namespace, settings: Settings) -> int:
    from workers.errors import ConductorError
    from workers.promotion_on_demand import PromotionRequest, promote_on_demand
    from workers.redis_client import connect

    needed = rules_and_octopus(settings, "promote")
    if needed is None:
        return 2
    rules, client = needed
    connection = connect(settings.redis_url, timeout=settings.redis_timeout_seconds)
    context = settings.worker_context(connection, rules=rules, octopus=client)
    request = PromotionRequest(
        orchestration=args.orchestration, to=args.to, source=args.source, tenant=args.tenant, what_if=args.what_if
    )
    try:
        plan = promote_on_demand(request, context, requested_by=f"conductor promote, by {getpass.getuser()}")
    except ConductorError as error:
        print(f"conductor promote: {error}", file=sys.stderr)
        return 2
    print(plan.notes or "")
    if args.what_if:
        print(f"{plan.id}: what-if, nothing deployed")
    elif plan.status == "failed":
        print(f"{plan.id}: not started, a component cannot be planned: {plan.report}")
        return 1
    else:
        print(f"{plan.id}: queued for the workers; follow it with `conductor status` or GET /promotions/{plan.id}")
    return 0
