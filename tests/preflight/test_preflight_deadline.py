"""An endpoint that accepts and never answers must not hold a CI job: the run ends at its deadline
and reports what it could not check (exit 4)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections, reads, and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_endpoint_ends_at_the_deadline_as_not_checked(silent_endpoint: str, tmp_path: Path) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    out = subprocess.run([sys.executable, "-m", "gpufleet", "preflight", "--stack", "stacks/Pulumi.aws-training.yaml",
                          "--cloud", "aws", "--aws-endpoint-url", silent_endpoint, "--deadline-s", "3",
                          "--format", "json"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)  # one attempt alone may wait 30 s, and botocore retries 5 times
    assert out.returncode == 4, out.stderr[-2000:]
    report = json.loads(out.stdout)
    findings = report["findings"]
    assert findings and all(f["kind"] == "not_checked" for f in findings)
    assert any("deadline of 3 s passed" in f["message"] for f in findings)
