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
