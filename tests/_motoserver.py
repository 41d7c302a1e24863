"""Local moto servers: one in a thread for a session (``threaded_moto``), one of a test module's own in a child
process (``moto_process``), and the switch that makes a server enforce IAM.

The IAM switch (``POST /moto-api/reset-auth``) and the backends are global to a server process, so a module
that turns authentication on runs its own server rather than the session's shared one.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

__all__ = ["enforce_iam", "moto_process", "threaded_moto"]


@contextlib.contextmanager
def threaded_moto() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a random port) in a thread of this process; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """A moto server in a child process on a free loopback port; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the moto server exited"
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):  # noqa: S310  # loopback
                    break
            except OSError:
                assert time.monotonic() < deadline, "the moto server did not start"
                time.sleep(0.1)  # polling a child process: there is no clock to wait on
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def enforce_iam(url: str) -> None:
    """From now on the server verifies every request's SigV4 signature and the caller's IAM policies."""
    # The body is the number of requests left unchecked (not form-encoded, or werkzeug eats it as a form).
    switch = urllib.request.Request(  # noqa: S310
        f"{url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(switch, timeout=10) as response:  # noqa: S310  # the loopback moto server
        assert response.status == 200
