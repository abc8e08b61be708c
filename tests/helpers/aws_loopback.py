"""moto's server on loopback, standing in for AWS (Lambda, IAM, S3) in the publish tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.processes import free_port, wait_for_port


@contextmanager
def moto_server(recording: Path | None = None) -> Iterator[dict[str, str]]:
    """Yield the environment a client needs to talk to a fresh moto server; stop it afterwards. With
    `recording`, moto writes every request it receives there (one JSON object a line: method, url, body), so
    a test can read what a client sent that moto itself does not keep."""
    port = free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    if recording is not None:
        env.update(MOTO_ENABLE_RECORDING="true", MOTO_RECORDER_FILEPATH=str(recording))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for_port(port)
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def modelpack(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The installed `modelpack` command in a fresh process, as a user (or CI) runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run([str(Path(sys.executable).parent / "modelpack"), *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=300, check=False)


def client(service: str, env: dict[str, str]):
    import boto3

    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")
