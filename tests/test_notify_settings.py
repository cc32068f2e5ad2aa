"""The rules' `notify` and the settings of notifications: every bad value refused with what was wrong, secrets
read from a variable or a file, never shown."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.cli import _settings_error, main
from service.settings import Settings
from tests.support.stack import RULES
from workers.notify_config import notify_settings_problem
from workers.rules import RulesError, parse_rules

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER = "whsec_" + base64.b64encode(bytes(range(100, 124))).decode()


def rules_with_notify(notify: str) -> str:
    return RULES.format(window=0) + "    notify:\n" + "".join(f"      {line}\n" for line in notify.splitlines())


def test_notify_rules_name_receivers_and_recipients_with_their_filters() -> None:
    rules = parse_rules(
        rules_with_notify(
            "webhooks:\n"
            "  - url: https://hooks.example.com/releases?token=abc\n"
            "  - url: http://10.0.0.5:8080/plan-ended\n"
            "    kinds: [promotion]\n"
            "    outcomes: [failed]\n"
            "email:\n"
            "  to: [ops@example.com, 'Release Team <releases@example.com>']\n"
        )
    )
    notify = rules.orchestrations[0].notify
    assert [receiver.url for receiver in notify.webhooks] == [
        "https://hooks.example.com/releases?token=abc",
        "http://10.0.0.5:8080/plan-ended",
    ]
    assert notify.webhooks[0].wants("redeploy", "succeeded")
    assert not notify.webhooks[1].wants("redeploy", "failed")
    assert not notify.webhooks[1].wants("promotion", "succeeded")
    assert notify.webhooks[1].wants("promotion", "failed")
    assert notify.email is not None
    assert [str(to) for to in notify.email.to] == ["ops <ops@example.com>", "Release Team <releases@example.com>"]
    assert parse_rules(RULES.format(window=0)).orchestrations[0].notify.webhooks == ()


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        ("webhooks:\n  - url: ftp://h.example/x", "url: Value error, 'ftp://h.example/x' is not an http(s) URL"),
        ("webhooks:\n  - url: https://user:pw@hooks.example.com/", "must not carry credentials"),
        ("webhooks:\n  - url: https://hooks.example.com:99999/", "has a port that is not a number"),
        ("webhooks:\n  - url: https://a.example/\n  - url: https://a.example/", "listed once: https://a.example/"),
        ("webhooks:\n  - url: https://a.example/\n    kinds: [deploy]", "kinds[0]: Input should be 'promotion' or"),
        ("webhooks:\n  - url: https://a.example/\n    outcomes: []", "outcomes: Value error, list at least one"),
        ("email:\n  to: [not-an-address]", "notify.email.to[0]: value is not a valid email address"),
        ("email:\n  to: []", "notify.email.to: Value error, list at least one address"),
        ("emails:\n  to: [ops@example.com]", "notify.emails: Extra inputs are not permitted; did you mean 'email'?"),
    ],
)  # fmt: skip
def test_bad_notify_rules_are_refused_with_line_and_field(notify: str, expected: str) -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules(rules_with_notify(notify), source="rules.yaml")
    (problem,) = refused.value.problems
    assert expected in problem, problem
    line = int(problem.split(":")[1])
    assert line > RULES.format(window=0).count("\n"), "the line of the notify section"
    assert "orchestrations[0].notify" in problem


def test_signing_secrets_come_from_the_variable_or_a_file_and_are_masked(tmp_path: Path) -> None:
    settings = Settings(notify_webhook_secret=f"{SECRET}, {OTHER}")
    assert [secret.get_secret_value() for secret in settings.notify_config.signing_secrets] == [SECRET, OTHER]
    assert {SECRET, OTHER} <= set(settings.secret_texts())
    assert SECRET not in repr(settings.notify_config)
    assert SECRET not in repr(settings)

    path = tmp_path / "signing"
    path.write_text(f"{SECRET}\n{OTHER}\n")
    from_file = Settings(notify_webhook_secret_file=path)
    assert [secret.get_secret_value() for secret in from_file.notify_config.signing_secrets] == [SECRET, OTHER]


def test_smtp_settings_with_a_password_file(tmp_path: Path) -> None:
    path = tmp_path / "smtp-password"
    path.write_text("s3cret-smtp-password\n")
    settings = Settings(
        smtp_host="mail.example.com",
        smtp_port=465,
        smtp_security="ssl",
        smtp_from="Release Conductor <conductor@example.com>",
        smtp_username="conductor",
        smtp_password_file=path,
    )
    smtp = settings.notify_config.smtp
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.security, smtp.sender, smtp.username) == (
        "mail.example.com",
        465,
        "ssl",
        "Release Conductor <conductor@example.com>",
        "conductor",
    )
    assert smtp.password is not None
    assert smtp.password.get_secret_value() == "s3cret-smtp-password"
    assert "s3cret-smtp-password" in settings.secret_texts()
    assert "s3cret-smtp-password" not in repr(settings.notify_config)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"notify_webhook_secret": "c2VjcmV0"}, "a signing secret starts with 'whsec_'"),
        ({"notify_webhook_secret": "whsec_not base64!"}, "is not base64"),
        ({"notify_webhook_secret": "whsec_" + base64.b64encode(b"short").decode()}, "this one holds 5"),
        ({"notify_webhook_secret": " , "}, "holds no secret"),
        ({"notify_webhook_secret": SECRET, "notify_webhook_secret_file": "/x"}, "not both"),
        ({"notify_webhook_secret_file": "/nonexistent/signing"}, "cannot read /nonexistent/signing"),
        ({"smtp_host": "mail.example.com"}, "without CONDUCTOR_SMTP_FROM"),
        ({"smtp_host": "m.x", "smtp_from": "c@x.io", "smtp_password": "pw"}, "without CONDUCTOR_SMTP_USERNAME"),
        ({"smtp_from": "conductor at example"}, "CONDUCTOR_SMTP_FROM: value is not a valid email address"),
        ({"smtp_security": "tls"}, "CONDUCTOR_SMTP_SECURITY: Input should be 'starttls', 'ssl' or 'none'"),
        ({"notify_retry_intervals": "10,soon"}, "CONDUCTOR_NOTIFY_RETRY_INTERVALS: Value error, '10,soon' is not"),
    ],
)  # fmt: skip
def test_bad_notify_settings_stop_start_up_saying_what_is_wrong(values: dict[str, str], expected: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(**values)  # type: ignore[arg-type]
    message = _settings_error(refused.value)
    assert expected in message, message
    assert SECRET not in message
    assert "short" not in message


def test_a_worker_refuses_rules_that_need_settings_it_lacks() -> None:
    rules = parse_rules(rules_with_notify("webhooks:\n  - url: https://a.example/\nemail:\n  to: [ops@example.com]"))
    problem = notify_settings_problem(rules, Settings().notify_config)
    assert problem is not None
    assert "CONDUCTOR_NOTIFY_WEBHOOK_SECRET" in problem
    assert "sample-app" in problem
    signed = Settings(notify_webhook_secret=SECRET).notify_config
    problem = notify_settings_problem(rules, signed)
    assert problem is not None
    assert "CONDUCTOR_SMTP_HOST" in problem
    complete = Settings(notify_webhook_secret=SECRET, smtp_host="m.example", smtp_from="c@example.com").notify_config
    assert notify_settings_problem(rules, complete) is None
    assert notify_settings_problem(parse_rules(RULES.format(window=0)), Settings().notify_config) is None


def test_conductor_worker_exits_2_naming_the_missing_signing_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_with_notify("webhooks:\n  - url: https://a.example/"))
    monkeypatch.setenv("CONDUCTOR_RULES", str(rules))
    monkeypatch.setenv("CONDUCTOR_OCTOPUS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CONDUCTOR_OCTOPUS_API_KEY", "API-NOTIFYTEST")
    assert main(["worker", "--burst"]) == 2
    assert "conductor worker: the rules of sample-app name webhook receivers" in capsys.readouterr().err
