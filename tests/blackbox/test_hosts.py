"""Hosts: the stack spread over separate network namespaces joined by a bridge, wired with tcp:// URLs, as it
would run on six machines. Needs root (it makes namespaces and links); without root it is skipped, saying why.

Topology (every name ends in this test's pid, so runs never collide; nothing is added to the root namespace):

    ibs-br-PID   the switch: bridge br0 and one port per host (gw, pk, mk, r1, r2, cl); no address
    ibs-gw-PID   10.203.0.2   gateway: HTTP :8080, listens for runners tcp://:7003 and their events tcp://:7004
    ibs-pk-PID   10.203.0.3   packager, listens tcp://:7001
    ibs-mk-PID   10.203.0.4   marketplace, listens tcp://:7002
    ibs-r1-PID   10.203.0.5   runner r1, dials the gateway
    ibs-r2-PID   10.203.0.6   runner r2, dials the gateway
    ibs-cl-PID   10.203.0.10  the client: this test's own host. Python cannot move one of its threads' sockets
                              into a namespace portably, so the test talks HTTP through a small proxy process
                              started there (`ip netns exec ibs-cl-PID python3 -c CLIENT`): one JSON request per
                              line in, one JSON reply per line out.

The data root is one folder every daemon is given (a network volume stands in as a shared folder).

Cutting a runner host's link (`ip link set eth0 down` in its namespace) leaves the runner process alive: it
still holds the owner lock (flock) of its jobs on the shared data root, so no other runner may adopt them;
it finishes them itself through the shared folder, unheard by the gateway. What the test asserts: every job
ends COMPLETE with every file, and during the cut the other runner keeps answering run_sync and jobs/status
(for every job, including the cut-off runner's, since records live on the shared data root). When the link
comes back the cut runner is heard again (ibsol_runners_attached back to 2).

When the link is cut the gateway stops hearing the runner's heartbeats and closes its connections to it
(their addresses come with the heartbeats), so every call after that goes to the runner that answers."""
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import ADMIN_TOKEN, BIN, SANITIZER_MARKS, SOURCE, binary, fields
from gen_docs import columns_pdf
from pki import Pki

EXAMPLE = os.path.join(SOURCE, "docs/example-solution")
INVOICE = os.path.join(EXAMPLE, "demo_data/invoice-1001.txt")
SLOW_PDF = columns_pdf(15)  # generated: 15 pages of three-column prose

NET = "10.203.0"
HOSTS = {"gw": 2, "pk": 3, "mk": 4, "r1": 5, "r2": 6, "cl": 10}
HTTP = "http://%s.2:8080" % NET
URLS = {
    "IBSOL_PACKAGER_URL": "tcp://%s.3:7001" % NET,
    "IBSOL_MARKETPLACE_URL": "tcp://%s.4:7002" % NET,
    "IBSOL_RUNNER_URL": "tcp://%s.2:7003" % NET,
    "IBSOL_EVENTS_URL": "tcp://%s.2:7004" % NET,
}
NDOCS = 40            # slow documents, in two jobs of NDOCS / 2
CUT_ROUNDS = 2        # rounds of calls (status of each job, one run_sync) during the cut
CUT_TRIES = 6         # tries of one call during the cut (see the KNOWN BUG below)
CUT_CALL_S = 4        # the client's patience for one jobs/status call during the cut
SYNC_CALL_S = 12      # ... for one run_sync (it queues behind the files of that runner's own job: FIFO pool)
JOBS_DEADLINE_S = 100  # every job ended, counted from the start of the test
REJOIN_S = 30         # the cut runner heard again after its link is back
TEST_DEADLINE_S = 130  # setup to the end of the checks

# The client's HTTP hand inside its namespace: a request per stdin line, a reply per stdout line.
CLIENT = r"""
import base64, json, sys, urllib.request, urllib.error
for line in sys.stdin:
    q = json.loads(line)
    data = None
    if "file" in q:
        data = open(q["file"], "rb").read()
    elif "json" in q:
        data = json.dumps(q["json"]).encode()
    req = urllib.request.Request(q["url"], data=data, method=q["method"],
                                 headers={"Authorization": "Bearer " + q["token"]})
    if "json" in q:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=q["timeout"]) as r:
            out = {"status": r.status, "text": r.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        out = {"status": e.code, "text": e.read().decode("utf-8", "replace")}
    except Exception as e:
        out = {"status": 0, "text": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


def need_root():
    if os.geteuid() != 0:
        pytest.skip("test_hosts needs root: it creates network namespaces, a bridge and veth links "
                    "(run the test command as root to include it)")
    if not shutil.which("ip"):
        pytest.skip("test_hosts needs the 'ip' command (iproute2) to create network namespaces")
    probe = "ibs-probe-%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if r.returncode != 0:
        pytest.skip("test_hosts cannot create a network namespace even as root (a container without "
                    "CAP_SYS_ADMIN?): %s" % r.stderr.strip())


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r


class Net:
    """The namespaces and links; teardown deletes them all, which also removes every veth."""

    def __init__(self):
        self.tag = str(os.getpid())
        self.made = []

    def ns(self, host):
        return "ibs-%s-%s" % (host, self.tag)

    def build(self):
        br = self.ns("br")
        for host in ["br", *HOSTS]:
            sh("ip", "netns", "add", self.ns(host))
            self.made.append(self.ns(host))
            sh("ip", "-n", self.ns(host), "link", "set", "lo", "up")
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        for host, last in HOSTS.items():
            ns = self.ns(host)
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", host, "netns", br)
            sh("ip", "-n", br, "link", "set", host, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", "%s.%d/24" % (NET, last), "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def link(self, host, up):
        sh("ip", "-n", self.ns(host), "link", "set", "eth0", "up" if up else "down")

    def teardown(self):
        problems = []
        for ns in reversed(self.made):
            r = sh("ip", "netns", "del", ns, check=False)
            if r.returncode != 0:
                problems.append("cannot delete namespace %s: %s" % (ns, r.stderr.strip()))
        self.made = []
        return problems


class Client:
    """HTTP from the client namespace, through the proxy process running there."""

    def __init__(self, net, root):
        self.err = open(os.path.join(root, "client.log"), "ab")
        self.p = subprocess.Popen(["ip", "netns", "exec", net.ns("cl"), "/usr/bin/python3", "-u", "-c", CLIENT],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True)

    def call(self, method, path, timeout=30, **kw):
        q = {"method": method, "url": HTTP + path, "token": ADMIN_TOKEN, "timeout": timeout, **kw}
        self.p.stdin.write(json.dumps(q) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, "the client process ended (see client.log)"
        out = json.loads(line)
        try:
            out["json"] = json.loads(out["text"])
        except ValueError:
            out["json"] = None
        return out

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.call("POST", path, json=body, **kw)

    def put_file(self, drive_path, local_path):
        r = self.call("PUT", "/api/v2/files" + drive_path, file=local_path)
        assert r["status"] == 204, (drive_path, r)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


class Hosts:
    """The daemons, each started in its host's namespace; shutdown checks the harness rules (exit 0 on
    SIGTERM, no sanitizer report)."""

    def __init__(self, net, root, urls=URLS, extra_env=None):
        self.net, self.root = net, root
        self.data = os.path.join(root, "shared-volume")
        os.makedirs(self.data)
        with open(os.path.join(self.data, "tokens"), "w") as f:
            f.write("# test tokens\n%s admin admin\n" % ADMIN_TOKEN)
        self.env = dict(os.environ)
        self.env.update(urls)
        self.env.update(extra_env or {})
        self.env.update({
            "IBSOL_DATA": self.data,
            "IBSOL_HTTP_HOST": "%s.2" % NET,
            "IBSOL_HTTP_PORT": "8080",
            "IBSOL_HEARTBEAT_MS": "500",
            "IBSOL_CONNECT_TIMEOUT_MS": "3000",
            "IBSOL_REQUEST_TIMEOUT_MS": "15000",  # a call sent to the cut runner ends within the test
            "IBSOL_SYNC_TIMEOUT_MS": "12000",
            "IBSOL_POOL": "1",
            "OMP_THREAD_LIMIT": "1",
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0"),
        })
        self.procs, self.logs = {}, {}

    def start(self, host, daemon, **env):
        log = open(os.path.join(self.root, "%s.log" % host), "ab")
        e = dict(self.env, **env)
        self.procs[host] = subprocess.Popen(["ip", "netns", "exec", self.net.ns(host), binary(daemon)], env=e,
                                            stdout=log, stderr=subprocess.STDOUT)
        self.logs[host] = log.name
        log.close()

    def log(self, host):
        with open(self.logs[host], "rb") as f:
            return f.read().decode("utf-8", "replace")

    def all_logs(self, tail=3000):
        return "\n".join("== %s ==\n%s" % (h, self.log(h)[-tail:]) for h in self.logs)

    def shutdown(self):
        problems, stopping = [], []
        for host, p in self.procs.items():
            if p.poll() is not None:
                problems.append("%s exited early with %s" % (host, p.returncode))
            else:
                p.send_signal(signal.SIGTERM)
                stopping.append((host, p))
        for host, p in stopping:
            try:
                rc = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                problems.append("%s did not stop within 30 s of SIGTERM" % host)
                continue
            if rc != 0:
                problems.append("%s exited with %s on SIGTERM" % (host, rc))
        for host in self.logs:
            text = self.log(host)
            if any(m in text for m in SANITIZER_MARKS):
                problems.append("%s log has a sanitizer report:\n%s" % (host, text[-4000:]))
        self.procs = {}
        return problems


@contextlib.contextmanager
def running_hosts(urls=URLS, extra_env=None, make_env=None):
    """The stack on its hosts; make_env(root), when given, adds settings made in the test's folder."""
    need_root()
    root = tempfile.mkdtemp(prefix="ibs-hosts-", dir="/tmp")
    net = Net()
    stack = client = None
    problems = []
    try:
        net.build()
        stack = Hosts(net, root, urls, dict(extra_env or {}, **(make_env(root) if make_env else {})))
        stack.start("pk", "packager")
        stack.start("mk", "marketplace")
        stack.start("gw", "gateway")
        stack.start("r1", "runner", IBSOL_INSTANCE="r1")
        stack.start("r2", "runner", IBSOL_INSTANCE="r2")
        client = Client(net, root)
        yield stack, client, net
    finally:
        if client:
            client.close()
        if stack:
            problems += stack.shutdown()
        problems += net.teardown()
    assert not problems, "\n".join(problems) + "\n" + (stack.all_logs() if stack else "")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def hosts():
    with running_hosts() as h:
        yield h


def metric(client, name):
    r = client.get("/metrics", timeout=10)
    assert r["status"] == 200, r
    for line in r["text"].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def wait_for(what, check, timeout, stack):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(0.2)
    raise AssertionError("%s within %s s: last %r\n%s" % (what, timeout, last, stack.all_logs()))


def run_sync_invoice(client, timeout=30):
    body = {"name": "invoice_demo", "version": "1.0.0",
            "files": [{"file_name": "invoice-1001.txt",
                       "file_content": base64.b64encode(open(INVOICE, "rb").read()).decode()}]}
    return client.post("/api/v1/solution/run_sync", body, timeout=timeout)


def test_hosts_over_tcp_and_a_cut_runner(hosts):
    stack, client, net = hosts
    t0 = time.time()

    def healthy():
        r = client.get("/healthz", timeout=5)
        return r["status"] == 200 and (r["json"] or {}).get("runners") == 2, r

    wait_for("the stack on six hosts answers healthz with both runners attached", healthy, 30, stack)

    # upload, create, publish, install: all over HTTP from the client host
    for dirpath, _, files in os.walk(EXAMPLE):
        for fn in files:
            full = os.path.join(dirpath, fn)
            client.put_file("/admin/example/" + os.path.relpath(full, EXAMPLE), full)
    r = client.post("/solution/create", {"content_folder": "/admin/example", "output_folder": "/admin/build"})
    assert r["status"] == 200, r
    r = client.post("/marketplace/publish", {"ibsolution_path": r["json"]["ibsolution_path"]})
    assert r["status"] == 200, r
    r = client.post("/marketplace/install", {"name": "invoice_demo", "version": "1.0.0"})
    assert r["status"] == 200, r

    r = run_sync_invoice(client)
    assert r["status"] == 200, r
    rec = r["json"]["records"][0]
    assert fields(rec)["invoice_no"] == "INV-1001" and fields(rec)["total"] == 224.98, rec

    # two slow jobs, so each runner is likely to own one
    slow = SLOW_PDF
    ext = os.path.splitext(slow)[1]
    for i in range(NDOCS):
        client.put_file("/admin/in%d/doc-%02d%s" % (i % 2, i, ext), slow)
    jobs = []
    for i in range(2):
        r = client.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": "/admin/in%d" % i})
        assert r["status"] == 200, r
        jobs.append(r["json"]["job_id"])

    def record(job):
        with open(os.path.join(stack.data, "jobs", job + ".json")) as f:
            return json.load(f)

    # cut the host of the runner that owns the first job, once it is part-way through
    def started():
        rec = record(jobs[0])
        return rec.get("status") == "RUNNING" and rec.get("runner") in ("r1", "r2"), rec

    owner = wait_for("the first job starts", started, 30, stack)["runner"]
    other = "r2" if owner == "r1" else "r1"
    net.link(owner, up=False)
    cut_at = time.time()
    at_cut = record(jobs[0])
    assert at_cut["status"] == "RUNNING", ("the cut came too late: the job had ended", at_cut)
    print("\ncut %s at %.1f s, owner of job %s; %s should keep serving" % (owner, cut_at - t0, jobs[0], other))

    # The gateway stops hearing the cut runner within 3 heartbeats (500 ms each) and closes its connections, so
    # the calls that follow all go to the runner that answers.
    wait_for("the gateway to count one runner attached during the cut",
             lambda: (lambda n: (n == 1, n))(metric(client, "ibsol_runners_attached")), 15, stack)
    print("the gateway dropped %s at %.1f s after the cut" % (owner, time.time() - cut_at))

    # During the cut every call should be answered by the other runner: status of every job (the cut runner's
    # too: records live on the shared volume) and run_sync. A call the gateway sends to the cut runner gets no
    # answer; the client gives up on it after CUT_CALL_S and the test records it.
    served, unanswered = [], []

    def probe(what, call, check):
        t = time.time()
        r = call()
        took = time.time() - t
        if r["status"] == 200:
            check(r["json"])
            served.append((what, round(took, 1)))
            print("  %.1f ok %s" % (time.time() - cut_at, what))
        else:
            unanswered.append((what, r["status"], round(took, 1), r["text"][:160]))
            print("  %.1f NO %s" % (time.time() - cut_at, what))
        return r

    def check_status(body):
        assert body["state"] in ("PENDING", "DONE"), body

    def check_sync(body):
        assert fields(body["records"][0])["total"] == 224.98, body
        assert record(body["job_id"])["runner"] == other, ("run_sync during the cut ran on", record(body["job_id"]))

    def until_served(what, call, check):
        for _ in range(CUT_TRIES):
            r = probe(what, call, check)
            if r["status"] == 200:
                return r["json"]
        raise AssertionError("%s: no answer in %d tries during the cut: %s\n%s" % (what, CUT_TRIES, unanswered,
                                                                              stack.all_logs()))

    for i in range(CUT_ROUNDS):
        for job in jobs:
            until_served("jobs/status %s" % job[:8],
                         lambda: client.get("/jobs/status?job_id=" + job, timeout=CUT_CALL_S), check_status)
        until_served("run_sync #%d" % i, lambda: run_sync_invoice(client, timeout=SYNC_CALL_S), check_sync)
    print("during the cut: served %s; unanswered %s" % (served, unanswered))


    # Every job ends with every file. The cut runner still holds its jobs' owner locks on the shared volume, so
    # the other runner cannot adopt them: the cut runner finishes them itself through the volume.
    ended = {}

    def all_done():
        for job in jobs:
            if job in ended:
                continue
            r = client.get("/jobs/status?job_id=" + job, timeout=CUT_CALL_S)
            if r["status"] == 200 and r["json"]["state"] == "DONE":
                ended[job] = r["json"]
            elif r["status"] != 200:
                unanswered.append(("jobs/status %s" % job[:8], r["status"], CUT_CALL_S, r["text"][:160]))
        return len(ended) == len(jobs), {j: ended.get(j, "not yet") for j in jobs}

    sts = list(wait_for("every job to end during the cut", all_done, JOBS_DEADLINE_S - (time.time() - t0),
                        stack).values())
    for st in sts:
        cur = json.loads(st["cur_status"])
        assert cur["status"] == "COMPLETE", st
        assert cur["index"] == NDOCS // 2 and cur["total"] == NDOCS // 2, st
    assert record(jobs[0])["runner"] == owner, record(jobs[0])  # never adopted: its owner lock stayed held
    print("every job ended at %.1f s (cut for %.1f s)" % (time.time() - t0, time.time() - cut_at))

    # the link comes back: the cut runner is heard again
    net.link(owner, up=True)
    wait_for("the gateway to count both runners again after the link is back",
             lambda: (lambda n: (n == 2, n))(metric(client, "ibsol_runners_attached")), REJOIN_S, stack)
    print("both runners attached again at %.1f s" % (time.time() - t0))
    assert time.time() - t0 < TEST_DEADLINE_S

    assert not unanswered, ("calls the gateway sent to the cut runner after it dropped it", unanswered, served)


# --- the same hosts over tls+tcp:// ----------------------------------------------------------------------------

TLS_URLS = {k: v.replace("tcp://", "tls+tcp://") for k, v in URLS.items()}


def test_hosts_over_tls_with_mutual_certificates():
    """Every daemon on its own host, every URL tls+tcp:// with certificates from one CA: the stack works across
    hosts, and a host holding a certificate from another CA can neither call a service nor attach a runner."""
    made = {}

    def make_env(root):
        os.makedirs(os.path.join(root, "pki"))
        made["pki"] = Pki(os.path.join(root, "pki"))
        return made["pki"].env()

    with running_hosts(TLS_URLS, make_env=make_env) as (stack, client, net):
        pki = made["pki"]

        def healthy():
            r = client.get("/healthz", timeout=5)
            body = r["json"] or {}
            ok = body.get("services") == {"packager": "up", "marketplace": "up", "runner": "up"}
            return ok and body.get("runners") == 2, r

        wait_for("every service up and both runners attached over tls+tcp", healthy, 30, stack)
        for path in ("/marketplace/list", "/jobs/list"):
            r = client.get(path, timeout=10)
            assert r["status"] == 200 and r["json"]["status"] == "OK", (path, r)

        # From the client's host: the op tool with the CA's certificate gets in, with another CA's it does not.
        def op_from_client(**tls):
            env = dict(stack.env, IBSOL_DATA=os.path.join(stack.root, "op-data"), **tls)
            return subprocess.run(["ip", "netns", "exec", net.ns("cl"), os.path.join(BIN, "cli/ibsol-op"),
                                   "--timeout-ms", "5000", "--connect-timeout-ms", "1500", "--url",
                                   TLS_URLS["IBSOL_PACKAGER_URL"], "packager", "ping"],
                                  env=env, capture_output=True, text=True, timeout=60)

        p = op_from_client()
        assert p.returncode == 0 and json.loads(p.stdout)["service"] == "packager", p.stdout + p.stderr
        p = op_from_client(**pki.env(pki.rogue, pki.both_cas))
        assert p.returncode == 1 and json.loads(p.stdout)["msg"] == (
            "the packager is not reachable (no connection within 1500 ms)"), p.stdout + p.stderr

        # A runner on the client's host with the other CA's certificate never attaches.
        stack.start("cl", "runner", IBSOL_INSTANCE="rogue", IBSOL_DATA=os.path.join(stack.root, "rogue-data"),
                    **pki.env(pki.rogue, pki.both_cas))
        time.sleep(1.5)  # heartbeats every 500 ms here: one that got in would be counted by now
        assert metric(client, "ibsol_runners_attached") == 2
