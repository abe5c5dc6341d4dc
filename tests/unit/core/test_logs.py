import logging

from qbo_collector import logs


def test_registered_secret_never_reaches_a_handler(caplog):
    token = "eyJraWQiOiJ-very-secret-access-token-123"
    logs.secret(token)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("requests_oauthlib").debug("Adding token %s to request.", token)
        logging.getLogger("qbo_collector").info("refreshed: %r", {"access_token": token})
    assert token not in caplog.text
    assert caplog.text.count("[redacted]") == 2


def test_bearer_headers_are_redacted_even_if_unregistered(caplog):
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("urllib3").debug("headers: {'Authorization': 'Bearer abcdefghijklmnop1234'}")
        logging.getLogger("x").debug("body refresh_token=RT1-abcdefghijklmno")
    assert "abcdefghijklmnop1234" not in caplog.text
    assert "RT1-abcdefghijklmno" not in caplog.text


def test_every_secret_setting_is_redacted_once_the_settings_are_read(caplog, tmp_path):
    from qbo_collector import config

    values = {"sendgrid_api_key": "SG.key-abcdefghijklmnopqrstuvwxyz", "twilio_auth_token": "twilio-token-0123456789abcdef",
              "intuit_webhook_verifier_token": "verifier-0123456789", "intuit_client_secret": "client-secret-0123456789"}
    config.load(env_file=None, qbo_collector_home=tmp_path, **values)
    with caplog.at_level(logging.DEBUG):
        for value in values.values():
            logging.getLogger("urllib3").debug("sent %s", value)
    assert not any(value in caplog.text for value in values.values())
    assert caplog.text.count("[redacted]") == len(values)


def test_a_secret_in_a_logged_exception_never_reaches_a_handler(caplog):
    # A library's exception message may hold a key (a rejected request echoed back); the
    # traceback that log.exception adds is formatted by the handler, after the message was cleaned.
    key = "SG.leaked-in-an-exception-0123456789"
    logs.secret(key)
    with caplog.at_level(logging.DEBUG):
        try:
            raise RuntimeError(f"HTTP Error 400: the request carried {key}")
        except RuntimeError:
            logging.getLogger("qbo_collector.dispatch").exception("outbox row %s failed", 7)
    assert "outbox row 7 failed" in caplog.text and "RuntimeError" in caplog.text
    assert key not in caplog.text
    assert key not in logging.Formatter().format(caplog.records[-1])
