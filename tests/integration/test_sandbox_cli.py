"""``python -m qbo_collector.sandbox.server`` (what ``qbo-collector sandbox`` runs) serves in the foreground."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import requests


def test_sandbox_command_prints_urls_and_serves_the_discovery_document():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "qbo_collector.sandbox.server", "--port", "0", "--customers", "5",
                             "--invoices", "20", "--french"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        output = "".join(lines)
        url = re.search(r"Sandbox on (http://127\.0\.0\.1:\d+)", output).group(1)
        assert "INTUIT_CLIENT_ID=sandbox-client-id" in output and "INTUIT_CLIENT_SECRET=" in output
        assert "consent page" in output and output.count("company ") == 2
        doc = requests.get(f"{url}/.well-known/openid-configuration", timeout=10).json()
        assert doc["token_endpoint"] == f"{url}/oauth2/v1/tokens/bearer"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
