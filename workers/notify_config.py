"""How plan-end notifications are delivered: the webhook signing secrets, the SMTP server, the timeout and the
retries. Built once from the settings (`service.settings.Settings.notify_config`) and held by the worker's
context, so that a delivery job reads its secrets here and its arguments carry only ids.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from workers.rules import Rules

SmtpSecurity = Literal["starttls", "ssl", "none"]
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every such secret, not a secret
# Standard Webhooks: a symmetric secret of 24 to 64 random bytes.
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: SmtpSecurity
    sender: str
    username: str | None = None
    password: SecretStr | None = None


@dataclass(frozen=True)
class NotifyConfig:
    signing_secrets: tuple[SecretStr, ...] = ()
    smtp: SmtpServer | None = None
    timeout_seconds: float = 10.0
    retry_intervals: tuple[int, ...] = (10, 60, 300, 900)

    @property
    def job_timeout_seconds(self) -> int:
        """A delivery job's limit in RQ: its request's timeout, twice (connect and answer), and some slack."""
        return int(2 * self.timeout_seconds) + 10

    @property
    def attempts(self) -> int:
        """Every delivery is tried this many times at most, then reported failed."""
        return len(self.retry_intervals) + 1


def secret_problem(secret: str) -> str | None:
    """What is wrong with a signing secret, or None. Never repeats the secret."""
    if not secret.startswith(SECRET_PREFIX):
        return (
            f"a signing secret starts with {SECRET_PREFIX!r} followed by base64 (e.g. from `openssl rand -base64 32`)"
        )
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return f"the part after {SECRET_PREFIX!r} of a signing secret is not base64"
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        return (
            f"a signing secret holds {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} random bytes; this one holds {len(key)}"
        )
    return None


def notify_settings_problem(rules: Rules | None, config: NotifyConfig) -> str | None:
    """What the rules' notifications need that the settings lack, naming the setting; None when all is there."""
    if rules is None:
        return None
    webhooks = [item.name for item in rules.orchestrations if item.notify.webhooks]
    if webhooks and not config.signing_secrets:
        return (
            f"the rules of {', '.join(webhooks)} name webhook receivers, and no signing secret is set: set "
            "CONDUCTOR_NOTIFY_WEBHOOK_SECRET (or CONDUCTOR_NOTIFY_WEBHOOK_SECRET_FILE) to a whsec_... secret"
        )
    emails = [item.name for item in rules.orchestrations if item.notify.email is not None]
    if emails and config.smtp is None:
        return (
            f"the rules of {', '.join(emails)} name email recipients, and no SMTP server is set: set "
            "CONDUCTOR_SMTP_HOST and CONDUCTOR_SMTP_FROM"
        )
    return None
