import os
import stat

import pytest

from qbo_collector import config, errors


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        pytest.param("QBO_COLLECTOR_PUBLIC_URL", "ftp://example.com", "http:// or https://", id="public URL with a non-web scheme"),
        pytest.param("INTUIT_ENVIRONMENT", "staging", "http:// or https://", id="environment neither sandbox, production nor a URL"),
        pytest.param("QBO_COLLECTOR_DATABASE_URL", "mysql://x/y", "sqlite:/// or postgresql", id="unsupported database"),
        pytest.param("QBO_COLLECTOR_SECRET_KEY", "too-short", "Fernet key", id="secret key that is not a Fernet key"),
        pytest.param("TWILIO_FROM_NUMBER", "555-1234", "E.164", id="from number not in E.164"),
        pytest.param("INTUIT_REDIRECT_URI", "not a url", "http:// or https://", id="redirect URI that is not a URL"),
        pytest.param("QBO_COLLECTOR_TRUSTED_PROXY_COUNT", "-1", "number of proxies", id="negative proxy count"),
        pytest.param("QBO_COLLECTOR_TRUSTED_PROXY_COUNT", "nginx", "valid integer", id="proxy count that is not a number"),
    ],
)
def test_malformed_value_names_the_variable(monkeypatch, tmp_path, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(errors.ConfigError) as caught:
        config.load(env_file=None, qbo_collector_home=tmp_path)
    assert caught.value.variable == variable
    assert variable in caught.value.message and expected in caught.value.message


def test_names_are_exactly_the_documented_ones():
    assert {s.name for s in config.SETTINGS} == {
        "QBO_COLLECTOR_HOME", "QBO_COLLECTOR_DATABASE_URL", "QBO_COLLECTOR_SECRET_KEY", "QBO_COLLECTOR_PUBLIC_URL",
        "QBO_COLLECTOR_TRUSTED_PROXY_COUNT",
        "INTUIT_CLIENT_ID", "INTUIT_CLIENT_SECRET", "INTUIT_REDIRECT_URI", "INTUIT_ENVIRONMENT",
        "INTUIT_API_BASE_URL", "INTUIT_WEBHOOK_VERIFIER_TOKEN", "SENDGRID_API_KEY", "SENDGRID_API_HOST",
        "SENDGRID_FROM_EMAIL", "SENDGRID_WEBHOOK_PUBLIC_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_API_BASE_URL"}
    fields = set(config.Settings.model_fields)
    assert {s.name.lower() for s in config.SETTINGS} == fields


def test_readme_documents_every_setting():
    readme = open(os.path.join(os.path.dirname(__file__), "../../../README.md"), encoding="utf-8").read()
    missing = [s.name for s in config.SETTINGS if f"`{s.name}`" not in readme]
    assert not missing
    assert config.markdown_table() in readme  # the table is the declaration's, row for row


def test_no_trusted_proxy_unless_set(tmp_path, monkeypatch):
    assert config.load(env_file=None, qbo_collector_home=tmp_path).trusted_proxy_count == 0
    monkeypatch.setenv("QBO_COLLECTOR_TRUSTED_PROXY_COUNT", "")
    assert config.load(env_file=None, qbo_collector_home=tmp_path).trusted_proxy_count == 0  # blank means unset
    monkeypatch.setenv("QBO_COLLECTOR_TRUSTED_PROXY_COUNT", "1")
    assert config.load(env_file=None, qbo_collector_home=tmp_path).trusted_proxy_count == 1


def test_env_file_is_read(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("INTUIT_CLIENT_ID=from-dotenv\nSENDGRID_API_HOST=\n")
    settings = config.load(env_file=env, qbo_collector_home=tmp_path)
    assert settings.intuit_client_id == "from-dotenv"
    assert settings.sendgrid_api_host is None  # blank means unset


def test_secret_key_is_generated_once_with_mode_0600(tmp_path):
    settings = config.load(env_file=None, qbo_collector_home=tmp_path / "home")
    first = settings.secret_key()
    path = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.secret_key() == first


def test_world_readable_secret_key_is_refused(tmp_path):
    settings = config.load(env_file=None, qbo_collector_home=tmp_path)
    settings.secret_key()
    os.chmod(tmp_path / "secret.key", 0o644)
    with pytest.raises(errors.ConfigError, match="chmod 600"):
        settings.secret_key()


def test_require_names_the_missing_variable(tmp_path):
    settings = config.load(env_file=None, qbo_collector_home=tmp_path)
    with pytest.raises(errors.ConfigError) as caught:
        settings.require("INTUIT_CLIENT_ID")
    assert caught.value.variable == "INTUIT_CLIENT_ID"
    assert "developer.intuit.com" in caught.value.message


def test_defaults_derive_from_home_and_public_url(tmp_path):
    settings = config.load(env_file=None, qbo_collector_home=tmp_path, qbo_collector_public_url="https://ar.example.com/")
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/qbo-collector.db"
    assert settings.redirect_uri == "https://ar.example.com/connect/callback"
