"""One delivery of a plan's notification: the summary POSTed to a webhook receiver, or mailed.

A webhook carries the summary as JSON with the Standard Webhooks headers: `webhook-id` (the same for every
attempt of one delivery, so a receiver can drop a repeat), `webhook-timestamp` (this attempt's, in seconds)
and `webhook-signature`, `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` signed by the `standardwebhooks`
library, once per configured secret (space-separated, for a rotation). Any answer but 2xx, a timeout or no
connection is a failed attempt. An email is plain text through the SMTP server of the settings
(`starttls`, `ssl` or `none`; a login when a username is set).

A failed attempt is recorded (attempts, last error) and raised, so that RQ's `Retry` tries again after its
interval; the last one marks the delivery `failed`, logs it, and leaves the job in the queue's failed
registry (`conductor_failed_jobs` in `/metrics`). A delivery already made is not made again.
Secrets are read from the worker's settings (`WorkerContext.notify`); neither errors nor logs carry one, nor
the receiver's URL beyond its host (a URL can hold a token).
"""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from math import floor
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from standardwebhooks import Webhook

from workers.errors import PermanentError, TransientError
from workers.events import utcnow
from workers.notifications import Delivery, NotificationStore
from workers.notify_config import NotifyConfig, SmtpServer
from workers.notify_summary import PlanSummary, render_text, summarize
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.notify")
USER_AGENT = "release-conductor-notify"


class DeliveryFailed(Exception):
    """An attempt that did not deliver; the message says why, without a secret or the full URL."""


def deliver(plan_id: str, destination: str, context: WorkerContext, *, last_attempt: bool) -> dict[str, Any]:
    store = NotificationStore(context.redis, context.keys, context.retention)
    delivery = store.delivery(plan_id, destination)
    if delivery is None:
        raise PermanentError(f"no notification {destination} of plan {plan_id} is recorded (expired?)")
    if delivery.status == "delivered":
        return {"plan": plan_id, "destination": destination, "status": "delivered", "again": False}
    summary = _summary(plan_id, context)
    delivery.attempts += 1
    try:
        _send(delivery, message_id=f"{plan_id}-{destination}", summary=summary, config=context.notify)
    except DeliveryFailed as error:
        return _failed(store, plan_id, delivery, str(error), last_attempt=last_attempt)
    except PermanentError as error:  # a setting is missing: trying again cannot help
        return _failed(store, plan_id, delivery, str(error), last_attempt=True)
    delivery.status, delivery.last_error, delivery.delivered_at = "delivered", None, utcnow()
    store.save(plan_id, delivery)
    log.info("notification delivered", plan=plan_id, destination=destination, attempts=delivery.attempts)
    return {"plan": plan_id, "destination": destination, "status": "delivered", "attempts": delivery.attempts}


def _summary(plan_id: str, context: WorkerContext) -> PlanSummary:
    plan = context.plans.load(plan_id)
    if plan is None:
        raise PermanentError(f"plan {plan_id} is no longer in Redis: nothing to notify")
    deployments = {step.deployment_id for step in plan.steps if step.deployment_id}
    relays = [
        relay for relay in context.approvals.first_seen_since(plan.created_at) if relay.deployment_id in deployments
    ]
    return summarize(plan, relays, context.directory)


def _failed(
    store: NotificationStore, plan_id: str, delivery: Delivery, why: str, *, last_attempt: bool
) -> dict[str, Any]:
    delivery.last_error = why
    delivery.status = "failed" if last_attempt else "retrying"
    store.save(plan_id, delivery)
    fields = {"plan": plan_id, "destination": delivery.destination, "attempts": delivery.attempts, "reason": why}
    if last_attempt:
        log.error("notification not delivered; giving up", **fields)
        raise PermanentError(f"notification {delivery.destination} of {plan_id} not delivered: {why}")
    log.warning("notification not delivered; will try again", **fields)
    raise TransientError(f"notification {delivery.destination} of {plan_id} not delivered yet: {why}")


def _send(delivery: Delivery, *, message_id: str, summary: PlanSummary, config: NotifyConfig) -> None:
    if delivery.channel == "webhook":
        assert delivery.url is not None
        post_webhook(delivery.url, message_id=message_id, body=summary.model_dump_json(), config=config)
    else:
        if config.smtp is None:
            raise PermanentError("the rules name email recipients and no SMTP server is set: set CONDUCTOR_SMTP_HOST")
        subject, text = render_text(summary)
        send_email(
            config.smtp,
            to=delivery.to,
            subject=subject,
            text=text,
            message_id=message_id,
            timeout=config.timeout_seconds,
        )


def signed_headers(secrets: list[str], *, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: one signature per secret."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": signatures,
    }


def post_webhook(url: str, *, message_id: str, body: str, config: NotifyConfig) -> None:
    if not config.signing_secrets:
        raise PermanentError(
            "the rules name webhook receivers and no signing secret is set: set CONDUCTOR_NOTIFY_WEBHOOK_SECRET"
        )
    headers = signed_headers(
        [secret.get_secret_value() for secret in config.signing_secrets],
        message_id=message_id,
        body=body,
        at=datetime.now(UTC),
    )
    headers |= {"content-type": "application/json", "user-agent": USER_AGENT}
    host = urlsplit(url).hostname
    try:
        response = httpx.post(url, content=body.encode(), headers=headers, timeout=config.timeout_seconds)
    except httpx.TimeoutException:
        raise DeliveryFailed(f"{host} did not answer within {config.timeout_seconds:g} s") from None
    except httpx.TransportError as error:
        raise DeliveryFailed(f"could not reach {host}: {type(error).__name__}") from None
    if not response.is_success:
        raise DeliveryFailed(f"{host} answered {response.status_code}")


def send_email(smtp: SmtpServer, *, to: list[str], subject: str, text: str, message_id: str, timeout: float) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = smtp.sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(usegmt=True)
    # The same for every attempt of one delivery, so that a mail system can drop a repeat.
    message["Message-ID"] = f"<{message_id}@{smtp.sender.rpartition('@')[2].rstrip('>') or 'release-conductor'}>"
    message.set_content(text)
    try:
        _smtp_send(smtp, message, timeout=timeout)
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryFailed(f"{smtp.host} refused the login of {smtp.username!r} ({error.smtp_code})") from None
    except smtplib.SMTPException as error:
        raise DeliveryFailed(f"{smtp.host}:{smtp.port}: {type(error).__name__}: {error}") from None
    except (OSError, TimeoutError) as error:
        raise DeliveryFailed(f"could not reach {smtp.host}:{smtp.port}: {type(error).__name__}") from None


def _smtp_send(smtp: SmtpServer, message: EmailMessage, *, timeout: float) -> None:
    tls = ssl.create_default_context()
    server = (
        smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=tls)
        if smtp.security == "ssl"
        else smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    )
    with server:
        if smtp.security == "starttls":
            server.starttls(context=tls)
        if smtp.username:
            password = smtp.password.get_secret_value() if smtp.password is not None else ""
            server.login(smtp.username, password)
        server.send_message(message)
