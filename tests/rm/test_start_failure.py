"""A gvp-rm whose listener cannot be bound exits at once with status 1 (it used to hang on the CDR thread)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.rm.test_rm_interop import shipped_config
from tests.support import ROOT, free_port


def test_port_in_use_exits_1_instead_of_hanging(tmp_path):
    port = free_port()
    config = shipped_config(tmp_path, port, free_port())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        proc = subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=",
             "gvp-rm", "--config", str(config)],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, timeout=30)
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 1, out[-2000:]
    assert f"Couldn't listen on 127.0.0.1:{port}" in out
