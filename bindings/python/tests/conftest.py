"""Fixtures: a local receiver (examples/receiver) per test, and helpers to wait on its state."""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def receiver_path():
    p = os.environ.get("RARCH_RECEIVER") or os.path.join(
        HERE, "..", "..", "..", "examples", "receiver", "receiver")
    p = os.path.abspath(p)
    if not os.path.isfile(p):
        pytest.fail(f"receiver not found at {p}: run `make receiver` or set RARCH_RECEIVER")
    return p


def wait_for(predicate, timeout=15.0, what="condition"):
    """Polls `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class Receiver:
    def __init__(self, tmp, key="", extra=()):
        self.key = key
        addr_file = os.path.join(tmp, "receiver.addr")
        self.log = open(os.path.join(tmp, "receiver.log"), "wb")
        self.proc = subprocess.Popen(
            [receiver_path(), "-key", key, "-addr-file", addr_file, "-quiet", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"receiver exited with {self.proc.returncode}")
            try:
                with open(addr_file) as f:
                    a = f.read().strip()
                return a if a.endswith(tuple("0123456789")) else None
            except FileNotFoundError:
                return None

        self.addr = wait_for(ready, 10, "the receiver's address file")
        self.base = f"http://{self.addr}"
        self.url = f"{self.base}/log"

    def _req(self, path, body=None):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data,
                                     method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def stats(self):
        return json.loads(self._req("/stats"))

    def entries(self, service=None):
        out = [json.loads(l) for l in self._req("/entries").splitlines() if l.strip()]
        return [e for e in out if service is None or e["service"] == service]

    def wait_entries(self, service, n, timeout=15.0):
        return wait_for(lambda: (lambda es: es if len(es) >= n else None)(self.entries(service)),
                        timeout, f"{n} entries of {service}")

    def fault(self, **f):
        self._req("/admin/fault", f)

    def heal(self):
        self._req("/admin/fault", {"mode": "none"})

    def set_key(self, key):
        self._req("/admin/key", key.encode())
        self.key = key

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def receiver(tmp_path):
    r = Receiver(str(tmp_path), key=secrets.token_hex(16))
    yield r
    r.stop()


@pytest.fixture
def env(receiver, tmp_path, monkeypatch):
    """The receiver's URL and key in the environment (the only way the Python client is
    configured) and a fresh working directory (the disk buffer is ./var/log/<service>)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("RARCH_LOGGING_URL", receiver.url)
    monkeypatch.setenv("RARCH_LOGGING_API_KEY", receiver.key)
    monkeypatch.delenv("RARCH_LOGGING_DEFAULT_LEVEL", raising=False)
    return receiver


@pytest.fixture
def service():
    """A service name of its own for each test (the registry is process-wide)."""
    return "svc-" + uuid.uuid4().hex[:12]


def subprocess_env(receiver, **extra):
    e = dict(os.environ)
    e["RARCH_LOGGING_URL"] = receiver.url
    e["RARCH_LOGGING_API_KEY"] = receiver.key
    e.pop("RARCH_LOGGING_DEFAULT_LEVEL", None)
    e.update(extra)
    return e


def run_python(code_or_file, cwd, env, timeout=60, args=()):
    cmd = [sys.executable]
    cmd += [code_or_file] if os.path.isfile(code_or_file) else ["-c", code_or_file]
    p = subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    return p
