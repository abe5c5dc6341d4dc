"""`make demo`'s promise: the page serves, with both demo companies connected through the real OAuth flow."""

from __future__ import annotations

import re

import requests

from qbo_collector import demo


def test_demo_serves_a_page_with_companies_connected_through_oauth(tmp_path):
    running = demo.start(tmp_path / "demo", port=0, sync=False, schedule=False)
    try:
        session = requests.Session()
        login_page = session.get(f"{running.url}/login", timeout=10)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page.text).group(1)
        response = session.post(f"{running.url}/login", timeout=10,
                                data={"email": demo.DEMO_EMAIL, "password": running.password, "csrf_token": token})
        assert response.status_code == 200 and response.url.endswith("/companies")
        assert "Boulangerie Martin SARL" in response.text and "Maple Street Plumbing" in response.text
        assert response.text.count("Connected") >= 2
        assert running.sandbox.log.count("oauth", "token") == 2  # two real authorization-code exchanges
    finally:
        running.stop()
