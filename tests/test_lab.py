"""`make lab` serves JupyterLab: a scripted headless start answers HTTP 200 on /lab, then stops."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_jupyterlab(tmp_path):
    port = free_port()
    lab_args = (
        f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token= "
        "--ServerApp.port_retries=0"
    )
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    server = subprocess.Popen(
        ["make", "-s", "lab", f"VENV={sys.prefix}", f"LAB_ARGS={lab_args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so the whole group (make and jupyter) can be stopped
    )
    try:
        status, deadline = None, time.monotonic() + 90
        while status != 200 and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as reply:
                    status = reply.status
            except OSError:
                time.sleep(0.5)
        assert status == 200, server.stdout.read().decode() if server.poll() is not None else ""
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
