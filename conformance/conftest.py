"""End-to-end fixtures: a real `berth server` on a free port, the real kubectl and the
real Python client pointed at it through the generated admin kubeconfig."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERTH = os.environ.get("BERTH", os.path.join(ROOT, "build", "berth"))
KUBECTL = os.environ.get("KUBECTL", "kubectl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `berth server` process with its own data directory."""

    def __init__(self, data_dir, extra_args=()):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = os.path.join(data_dir, "kubeconfig")
        self.log_path = os.path.join(data_dir, "server.log")
        self.home = os.path.join(data_dir, "home")
        os.makedirs(self.home, exist_ok=True)
        self.args = [BERTH, "server", "--data-dir", data_dir, "--listen", f"127.0.0.1:{self.port}", *extra_args]
        self.proc = None

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth server exited with {self.proc.returncode}: {self.read_log()}")
            if os.path.exists(self.kubeconfig):
                r = subprocess.run(["curl", "-sk", f"{self.url}/readyz"], capture_output=True, text=True)
                if r.stdout == "ok":
                    return
            time.sleep(0.05)
        raise RuntimeError("berth server did not become ready: " + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kubectl(self, *args, input=None, check=True, timeout=60):
        """Runs the real kubectl against this server with a fresh discovery cache."""
        env = dict(os.environ, HOME=self.home, KUBECONFIG=self.kubeconfig)
        r = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def kubectl_json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory(prefix="berth-e2e-") as d:
        s = Server(d).start()
        yield s
        s.stop()


@pytest.fixture
def fresh_server():
    """A server of the test's own, for tests that stop or restart it."""
    with tempfile.TemporaryDirectory(prefix="berth-e2e-") as d:
        s = Server(d)
        yield s
        s.stop()


@pytest.fixture
def namespace(server, request):
    """A namespace of the test's own, so tests do not see each other's objects."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:50].strip("-")
    server.kubectl("create", "namespace", name)
    yield name
