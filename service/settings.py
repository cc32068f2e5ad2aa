"""The conductor's configuration: `CONDUCTOR_` environment variables, validated once at start."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

import redis
from pydantic import Field, NameEmail, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.event_queue import EventQueue, JobPolicy
from workers.keys import RedisKeys
from workers.notify_config import NotifyConfig, SmtpSecurity, SmtpServer, secret_problem
from workers.octopus import OctopusClient
from workers.redis_client import url_problem
from workers.retention import DEFAULT_SECONDS as DEFAULT_RETENTION_SECONDS
from workers.retention import Retention
from workers.rules import Rules, load_rules

if TYPE_CHECKING:
    from workers.runtime import WorkerContext


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONDUCTOR_", extra="ignore")

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding the queue, dedupe records and plans.")
    redis_prefix: str = Field(
        "conductor", description="Prefix of every key, the RQ queue name and the start of job ids."
    )
    redis_timeout_seconds: float = Field(
        1.0, gt=0, le=5, description="Connect and socket timeout: a dead Redis becomes a fast 503."
    )

    octopus_url: str | None = Field(None, description="Octopus server base URL, e.g. https://octopus.example")
    octopus_api_key: SecretStr | None = Field(None, description="API key of the conductor's service account.")

    webhook_header: str = Field(
        "X-Conductor-Secret",
        min_length=1,
        pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
        description="Header Octopus sends (the subscription's WebhookHeaderKey).",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Accepted header values (WebhookHeaderValue), comma-separated to allow rotation.",
    )
    allow_unauthenticated: bool = Field(
        False, description="Accept webhooks without a secret. Only for a closed test network."
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Webhook body limit.")
    dedupe_window_seconds: int = Field(
        7 * 24 * 3600, ge=1, description="How long an Event.Id is remembered as already queued."
    )
    retention_seconds: int = Field(
        DEFAULT_RETENTION_SECONDS,
        ge=1,
        description="How long plans, approval relays, deployment outcomes and their indexes are kept after they "
        "end (or last changed); those still in progress are kept until they end.",
    )

    job_timeout_seconds: int = Field(
        30,
        ge=5,
        description="Longest a single job may run; a killed worker's job is requeued after this + 60 s.",
    )
    job_retry_intervals: str = Field(
        "5,30,120,600", description="Backoff between retries of a failing job, seconds, comma-separated."
    )

    rules: Path | None = Field(None, description="Path of the rules file (YAML).")
    reconcile_lookback_seconds: int = Field(
        3600, ge=1, description="How far back the reconciler's first run reads Octopus's audit log."
    )
    reconcile_overlap_seconds: int = Field(
        300,
        ge=0,
        description="How far before its cursor (the newest Occurred read) each reconcile pass reads again, "
        "for events that become visible late.",
    )
    redis_replica_acks: int = Field(
        0,
        ge=0,
        le=16,
        description="Replicas that must confirm an event (Redis WAIT) before the intake answers 2xx; 0: no wait.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: JSON unless stderr is a terminal."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Any case: info, INFO.")

    read_tokens: SecretStr | None = Field(
        None,
        description="Bearer tokens for the read API and /metrics, comma-separated to allow rotation. "
        "Without one the read API answers 403.",
    )
    write_tokens: SecretStr | None = Field(
        None, description="Bearer tokens for the write API (POST /promotions), comma-separated to allow rotation."
    )
    metrics_open: bool = Field(
        False, description="Serve /metrics without a read token, for a Prometheus inside the cluster."
    )

    # Plan-end notifications (the rules' `notify`): the webhook signing secrets and the SMTP server.
    notify_webhook_secret: SecretStr | None = Field(
        None,
        description="Standard Webhooks signing secrets (whsec_ and base64), comma-separated during a rotation.",
    )
    notify_webhook_secret_file: Path | None = Field(
        None, description="A file holding the signing secrets instead (comma- or line-separated)."
    )
    notify_timeout_seconds: float = Field(10.0, gt=0, le=60, description="Wait on each network step of a delivery.")
    notify_retry_intervals: str = Field(
        "10,60,300,900",
        description="Backoff between the attempts of a delivery, seconds; one more attempt than intervals.",
    )
    smtp_host: str | None = Field(None, min_length=1, description="SMTP server for email notifications.")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: SmtpSecurity = Field("starttls", description="starttls, ssl (implicit TLS, port 465) or none.")
    smtp_from: NameEmail | None = Field(None, description="From address of notifications.")
    smtp_username: str | None = Field(None, min_length=1)
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = Field(None, description="A file holding the SMTP password instead.")
    _signing_secrets: tuple[SecretStr, ...] = PrivateAttr(())
    _smtp_password: SecretStr | None = PrivateAttr(None)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_is_a_server(cls, value: str) -> str:
        problem = redis_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("octopus_url")
    @classmethod
    def _octopus_url_is_a_server(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the Octopus server's base URL, e.g. https://octopus.example.com")
        return value.strip()

    @field_validator("redis_prefix")
    @classmethod
    def _prefix_is_usable(cls, value: str) -> str:
        RedisKeys(value)
        return value

    @field_validator("job_retry_intervals")
    @classmethod
    def _intervals_are_seconds(cls, value: str) -> str:
        _parse_intervals(value)
        return value

    @model_validator(mode="after")
    def _lookback_within_dedupe_window(self) -> Settings:
        if self.reconcile_overlap_seconds >= self.dedupe_window_seconds:
            raise ValueError(
                "CONDUCTOR_RECONCILE_OVERLAP_SECONDS must be shorter than CONDUCTOR_DEDUPE_WINDOW_SECONDS, "
                "or the events read again would no longer be recognised as already queued"
            )
        if self.reconcile_lookback_seconds >= self.dedupe_window_seconds:
            raise ValueError(
                "CONDUCTOR_RECONCILE_LOOKBACK_SECONDS must be shorter than CONDUCTOR_DEDUPE_WINDOW_SECONDS, "
                "or events older than the dedupe window would be queued again"
            )
        return self

    @field_validator("notify_retry_intervals")
    @classmethod
    def _notify_intervals_are_seconds(cls, value: str) -> str:
        _parse_intervals(value)
        return value

    @model_validator(mode="after")
    def _notify_secrets_usable(self) -> Settings:
        """Read the signing secrets and the SMTP password (from the variable or its file) once, and check them."""
        secrets = _one_of(
            self.notify_webhook_secret, self.notify_webhook_secret_file, "CONDUCTOR_NOTIFY_WEBHOOK_SECRET"
        )
        if secrets is not None:
            values = [part.strip() for part in secrets.replace("\n", ",").split(",") if part.strip()]
            if not values:
                raise ValueError(
                    "CONDUCTOR_NOTIFY_WEBHOOK_SECRET holds no secret: give one whsec_... value, or several"
                )
            for value in values:
                problem = secret_problem(value)
                if problem is not None:
                    raise ValueError(f"CONDUCTOR_NOTIFY_WEBHOOK_SECRET: {problem}")
            self._signing_secrets = tuple(SecretStr(value) for value in values)
        password = _one_of(self.smtp_password, self.smtp_password_file, "CONDUCTOR_SMTP_PASSWORD")
        if password is not None:
            self._smtp_password = SecretStr(password.strip("\r\n"))
        if self.smtp_host is not None and self.smtp_from is None:
            raise ValueError("CONDUCTOR_SMTP_HOST is set without CONDUCTOR_SMTP_FROM: set the From address too")
        if password is not None and self.smtp_username is None:
            raise ValueError("an SMTP password is set without CONDUCTOR_SMTP_USERNAME: set the username too")
        return self

    @field_validator("webhook_secret")
    @classmethod
    def _secrets_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _split_secrets(value.get_secret_value()):
            raise ValueError("holds no secret: give one value, or several separated by commas")
        return value

    @field_validator("read_tokens", "write_tokens")
    @classmethod
    def _tokens_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        tokens = _split_secrets(value.get_secret_value())
        if not tokens:
            raise ValueError("holds no token: give one, or several separated by commas")
        if any(len(token) < MIN_TOKEN_LENGTH for token in tokens):
            raise ValueError(
                f"each token must be at least {MIN_TOKEN_LENGTH} characters (e.g. the output of `openssl rand -hex 24`)"
            )
        return value

    def load_rules(self) -> Rules | None:
        """The rules file, validated; None when CONDUCTOR_RULES is not set. Raises RulesError."""
        return load_rules(self.rules) if self.rules is not None else None

    def octopus_client(self) -> OctopusClient | None:
        if self.octopus_url is None or self.octopus_api_key is None:
            return None
        return OctopusClient(base_url=self.octopus_url, api_key=self.octopus_api_key.get_secret_value())

    def worker_context(
        self, connection: redis.Redis, *, rules: Rules | None, octopus: OctopusClient | None
    ) -> WorkerContext:
        """What jobs need, as these settings shape it, for a process that plans or runs them itself."""
        from workers.runner import worker_context

        return worker_context(
            connection=connection,
            keys=self.keys,
            policy=self.job_policy,
            rules=rules,
            octopus=octopus,
            retention=self.retention,
            notify=self.notify_config,
        )

    def event_queue(self, connection: redis.Redis) -> EventQueue:
        """The one path from an event to a job, as these settings shape it."""
        return EventQueue(
            connection=connection,
            keys=self.keys,
            policy=self.job_policy,
            dedupe_window_seconds=self.dedupe_window_seconds,
            replica_acks=self.redis_replica_acks,
            # Half the socket timeout: WAIT answers "too few" before the connection gives up on it.
            replica_timeout_ms=int(self.redis_timeout_seconds * 500),
        )

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.redis_prefix)

    @property
    def retention(self) -> Retention:
        return Retention(self.retention_seconds)

    @property
    def job_policy(self) -> JobPolicy:
        return JobPolicy(
            timeout_seconds=self.job_timeout_seconds,
            retry_intervals=_parse_intervals(self.job_retry_intervals),
        )

    @property
    def notify_config(self) -> NotifyConfig:
        """How notifications are delivered: secrets, SMTP server, timeout and retries."""
        smtp = None
        if self.smtp_host is not None and self.smtp_from is not None:
            smtp = SmtpServer(
                host=self.smtp_host,
                port=self.smtp_port,
                security=self.smtp_security,
                sender=str(self.smtp_from),
                username=self.smtp_username,
                password=self._smtp_password,
            )
        return NotifyConfig(
            signing_secrets=self._signing_secrets,
            smtp=smtp,
            timeout_seconds=self.notify_timeout_seconds,
            retry_intervals=_parse_intervals(self.notify_retry_intervals),
        )

    def webhook_secrets(self) -> list[bytes]:
        return _encoded(self.webhook_secret)

    def read_token_values(self) -> list[bytes]:
        return _encoded(self.read_tokens)

    def write_token_values(self) -> list[bytes]:
        return _encoded(self.write_tokens)

    def secret_texts(self) -> list[str]:
        """Every configured secret, for the log masker: webhook secrets, tokens, the API key, Redis's password."""
        texts = [value.decode() for value in [*self.webhook_secrets(), *self.read_token_values()]]
        texts += [value.decode() for value in self.write_token_values()]
        if self.octopus_api_key is not None:
            texts.append(self.octopus_api_key.get_secret_value())
        texts += [secret.get_secret_value() for secret in self._signing_secrets]
        if self._smtp_password is not None and self._smtp_password.get_secret_value():
            texts.append(self._smtp_password.get_secret_value())
        password = redis_password(self.redis_url)
        if password:
            texts.append(password)
        return texts


MIN_TOKEN_LENGTH = 16


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a CONDUCTOR_REDIS_URL value, or None. Never repeats the URL (it may hold a password)."""
    return url_problem(url)


def redis_password(url: str) -> str | None:
    """The password in a Redis URL, for the log masker to hide."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _encoded(value: SecretStr | None) -> list[bytes]:
    if value is None:
        return []
    return [secret.encode() for secret in _split_secrets(value.get_secret_value())]


def _split_secrets(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _parse_intervals(raw: str) -> tuple[int, ...]:
    try:
        intervals = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a comma-separated list of whole seconds") from None
    if any(interval < 0 for interval in intervals):
        raise ValueError("retry intervals cannot be negative")
    return intervals


def _one_of(value: SecretStr | None, path: Path | None, variable: str) -> str | None:
    """A secret from its variable or from the file `<variable>_FILE` names (a mounted Kubernetes Secret)."""
    if value is not None and path is not None:
        raise ValueError(f"set {variable} or {variable}_FILE, not both")
    if path is None:
        return None if value is None else value.get_secret_value()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{variable}_FILE: cannot read {path}: {error.strerror}") from None
