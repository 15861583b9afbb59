"""Black-box harness: starts the real daemons on scratch addresses with a temporary data root, and talks HTTP
to the gateway as a user would. Every daemon must exit cleanly on SIGTERM with no sanitizer report."""
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

BIN = os.environ.get("IBSOL_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("IBSOL_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))

# The example solution (docs/example-solution), its first sample and the fields it reads there: several files
# install it and check those fields.
EXAMPLE = os.path.join(SOURCE, "docs/example-solution")
with open(os.path.join(EXAMPLE, "demo_data/invoice-1001.txt"), "rb") as _f:
    EXAMPLE_INVOICE = _f.read()
EXAMPLE_FIELDS = {"invoice_no": "INV-1001", "vendor": "ACME Supplies Ltd.", "issued": "2024-03-15",
                  "due": "2024-04-14", "total": 224.98, "summary": "ACME Supplies Ltd. INV-1001",
                  "items": [{"description": "Paper A4, 500 sheets", "qty": 10, "amount": 45},
                            {"description": "Toner cartridge", "qty": 2, "amount": 179.98}]}

ADMIN_TOKEN = "admin-token-0123456789abcdef"
ALICE_TOKEN = "alice-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef00"

DAEMONS = {
    "gateway": "gateway/ibsol-gateway",
    "packager": "packager/ibsol-packager",
    "marketplace": "marketplace/ibsol-marketplace",
    "runner": "runner/ibsol-runner",
}

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name):
    return os.path.join(BIN, DAEMONS.get(name, name))


class Stack:
    """One running ibsol stack. `procs` maps daemon name -> Popen."""

    def __init__(self, root, extra_env=None):
        self.root = root
        self.data = os.path.join(root, "d")
        os.makedirs(self.data, exist_ok=True)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ)
        self.env.update({
            "IBSOL_DATA": self.data,
            "IBSOL_HTTP_PORT": str(self.port),
            "IBSOL_CONNECT_TIMEOUT_MS": "1500",
            "OMP_THREAD_LIMIT": "1",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
            "IBSOL_WEBHOOK_BACKOFF_MS": "20",  # 7 retries in ~2.5 s instead of a minute
            "IBSOL_WEBHOOK_ALLOW_PRIVATE": "true",  # the tests' webhook receivers listen on 127.0.0.1
        })
        if extra_env:
            self.env.update(extra_env)
        with open(os.path.join(self.data, "tokens"), "w") as f:
            f.write("# test tokens\n%s admin admin\n%s alice user\n%s bob user\n" % (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN))
        self.procs = {}
        self.logs = {}
        self.session = requests.Session()

    def start(self, name, *args, env=None, key=None):
        """Starts daemon `name`; `key` (default: the name) tracks it, so that several runners can be told apart
        ("r1", "r2"). Its log is <root>/<key>.log, appended to when the same key is started again."""
        key = key or name
        log = open(os.path.join(self.root, "%s.log" % key), "ab")
        e = dict(self.env)
        if env:
            e.update(env)
        p = subprocess.Popen([binary(name), *args], env=e, stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the child has its own copy
        self.procs[key] = p
        self.logs[key] = log.name
        return p

    def stop(self, key, sig=signal.SIGTERM):
        """Stops a daemon by its key and returns its exit code; it is no longer tracked, so shutdown does not
        judge its exit code (a SIGKILLed process's -9 is expected). Its log is still checked for sanitizer
        reports."""
        p = self.procs.pop(key)
        p.send_signal(sig)
        try:
            return p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # A daemon that does not stop is a defect: say where each of its threads is, then kill it so the
            # run goes on.
            stacks = subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex", "thread apply all bt"],
                                    capture_output=True, text=True, timeout=120).stdout
            p.kill()
            p.wait()
            raise AssertionError("%s did not stop within 30 s of signal %d; its threads:\n%s"
                                 % (key, sig, stacks[-20000:]))

    def log(self, name):
        with open(self.logs[name], "rb") as f:
            return f.read().decode("utf-8", "replace")

    def start_all(self):
        for name in DAEMONS:
            self.start(name)
        self.wait_healthy()

    def wait_healthy(self, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                r = self.session.get(self.url + "/healthz", timeout=5)
                last = r.text
                if r.status_code == 200:
                    return
            except requests.ConnectionError as e:
                last = str(e)
            time.sleep(0.1)
        raise AssertionError("stack did not become healthy: %s\n%s" % (last, self.all_logs()))

    def all_logs(self):
        return "\n".join("== %s ==\n%s" % (n, self.log(n)[-3000:]) for n in self.logs)

    def call(self, method, path, token=ADMIN_TOKEN, **kw):
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        kw.setdefault("timeout", 120)
        return self.session.request(method, self.url + path, headers=headers, **kw)

    def post(self, path, body=None, token=ADMIN_TOKEN, **kw):
        if body is not None:
            kw["json"] = body
        return self.call("POST", path, token, **kw)

    def get(self, path, token=ADMIN_TOKEN, **kw):
        return self.call("GET", path, token, **kw)

    def put_file(self, drive_path, data, token=ADMIN_TOKEN):
        r = self.call("PUT", "/api/v2/files" + drive_path, token, data=data)
        assert r.status_code == 204, (r.status_code, r.text)

    def put_tree(self, drive_folder, local_folder, token=ADMIN_TOKEN):
        for dirpath, _, files in os.walk(local_folder):
            for fn in files:
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, local_folder)
                with open(full, "rb") as f:
                    self.put_file(drive_folder + "/" + rel, f.read(), token)

    def shutdown(self):
        problems = []
        for name in list(self.procs):
            p = self.procs[name]
            if p.poll() is not None:
                problems.append("%s exited early with %s" % (name, p.returncode))
                self.procs.pop(name)
                continue
            rc = self.stop(name)
            if rc != 0:
                problems.append("%s exited with %s" % (name, rc))
        for name in self.logs:
            text = self.log(name)
            for mark in SANITIZER_MARKS:
                if mark in text:
                    problems.append("%s log has a sanitizer report:\n%s" % (name, text[-4000:]))
                    break
        self.session.close()
        return problems


@pytest.fixture
def stack_factory():
    made = []

    def make(extra_env=None, start=True):
        root = tempfile.mkdtemp(prefix="ibs-", dir="/tmp")
        s = Stack(root, extra_env)
        made.append(s)
        if start:
            s.start_all()
        return s

    yield make
    problems = []
    for s in made:
        problems += s.shutdown()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def stack():
    root = tempfile.mkdtemp(prefix="ibs-", dir="/tmp")
    s = Stack(root)
    s.start_all()
    yield s
    problems = s.shutdown()
    assert not problems, "\n".join(problems)


def wait_for(what, fn, timeout=30.0, interval=0.1):
    """fn() until it gives something true (returned), or an AssertionError naming `what` after timeout s."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))


def metrics_value(s, name, labels=""):
    """One sample of the gateway's /metrics (labels as written there, e.g. '{state="QUEUED"}'), or None."""
    try:
        r = s.get("/metrics", timeout=5)
    except requests.RequestException:
        return None
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), r.text, re.M)
    return float(m.group(1)) if m else None


def install_example(s):
    """Packages the example solution from admin's drive, publishes and installs it (invoice_demo 1.0.0); returns
    the .ibsolution's drive path."""
    dst = os.path.join(s.data, "drive/admin/example")
    if not os.path.exists(dst):
        shutil.copytree(EXAMPLE, dst)
    r = s.post("/solution/create", {"content_folder": "/admin/example", "output_folder": "/admin/build"})
    assert r.status_code == 200, r.text
    path = r.json()["ibsolution_path"]
    assert s.post("/marketplace/publish", {"ibsolution_path": path}).status_code == 200
    assert s.post("/marketplace/install", {"name": "invoice_demo", "version": "1.0.0"}).status_code == 200
    return path


def fields(record):
    """A record's results as {key: value}."""
    return {r["key"]: r["value"] for r in record["results"]}


def b64(data):
    return base64.b64encode(data).decode()


def assert_error(r, http_status, code, *fragments):
    """The reply is the API's error shape with this status and code, and its msg names every fragment."""
    assert r.status_code == http_status, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == "ERROR", body
    assert body["code"] == code, body
    for frag in fragments:
        assert frag in body["msg"], (frag, body["msg"])
    return body
