"""The per-service debugging tools and the local stack script, used as a newcomer would."""
import json
import os
import socket
import subprocess
import tempfile
import threading
import time

import requests

from conftest import BIN, SOURCE, binary, free_port, wait_for


def op(stack, *args):
    p = subprocess.run([os.path.join(BIN, "cli/ibsol-op"), *args], env=stack.env, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_op_tool_talks_to_one_daemon(stack_factory):
    s = stack_factory(start=False)
    s.start("packager")
    s.start("marketplace", "--debug")
    rc, out, err = op(s, "marketplace", "ping")
    assert rc == 0, err
    reply = json.loads(out)
    assert reply["status"] == "OK" and reply["service"] == "marketplace"
    rc, out, _ = op(s, "packager", "solution.create", '{"content_folder": "/admin/x"}')
    assert rc == 1
    assert json.loads(out) == {"status": "ERROR", "code": "bad_request", "msg": "'output_folder' is required"}
    rc, out, _ = op(s, "--user", "alice", "--role", "user", "packager", "solution.create",
                    '{"content_folder": "/bob/x", "output_folder": "/alice/o"}')
    assert rc == 1 and json.loads(out)["code"] == "forbidden"
    rc, out, _ = op(s, "packager", "no.such.op")
    assert json.loads(out)["msg"] == "the packager has no operation 'no.such.op'"
    rc, out, err = op(s, "packager", "ping", "[1]")
    assert rc == 2 and "arguments must be a JSON object" in err
    rc, out, err = op(s, "nosuch", "ping")
    assert rc == 2 and "unknown service 'nosuch'" in err
    # --debug logs every message with its request id
    assert "rid=op-tool op=ping user=admin start" in s.log("marketplace")


def local_sh(env, *args):
    return subprocess.run([os.path.join(SOURCE, "deploy/local.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_local_sh_start_status_stop():
    root = tempfile.mkdtemp(prefix="ibs-", dir="/tmp")
    port = free_port()
    env = dict(os.environ, IBSOL_DATA=root + "/var", IBSOL_HTTP_PORT=str(port), IBSOL_RUNNERS="2", IBSOL_BIN=BIN)
    p = local_sh(env, "start")
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        assert "ibsol is up at http://127.0.0.1:%d" % port in p.stdout
        token = [l.split(": ")[1] for l in p.stdout.splitlines() if l.startswith("admin token: ")][0]
        with open(root + "/var/tokens") as f:
            assert token in f.read()
        r = requests.get("http://127.0.0.1:%d/marketplace/list" % port, headers={"Authorization": "Bearer " + token})
        assert r.status_code in (200, 501)
        assert "web page: http://127.0.0.1:%d/  (log in with the token)" % port in p.stdout
        # the client command it prints logs in and lists the catalog as printed
        hint = [l.strip() for l in p.stdout.splitlines() if " login " in l][0]
        assert hint == "%s/cli/ibsol login http://127.0.0.1:%d --token %s && %s/cli/ibsol list" % (BIN, port, token, BIN)
        cli = subprocess.run(["bash", "-c", hint], env=dict(os.environ, XDG_CONFIG_HOME=root + "/config"),
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert os.stat(root + "/config/ibsol/config").st_mode & 0o777 == 0o600
        st = local_sh(env, "status")
        assert st.returncode == 0, st.stdout
        for name in ("packager", "marketplace", "gateway", "runner1", "runner2"):
            assert "%s: running" % name in st.stdout
        again = local_sh(env, "start")
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stop = local_sh(env, "stop")
    assert stop.returncode == 0 and "stopped" in stop.stdout
    st = local_sh(env, "status")
    assert st.returncode == 3 and "gateway: stopped" in st.stdout


def test_local_sh_reports_the_daemon_that_failed():
    root = tempfile.mkdtemp(prefix="ibs-", dir="/tmp")
    env = dict(os.environ, IBSOL_DATA=root + "/var", IBSOL_HTTP_PORT=str(free_port()), IBSOL_BIN=BIN,
               IBSOL_MARKETPLACE_URL="tcp://nonsense")
    p = local_sh(env, "start")
    assert p.returncode == 1
    assert "did not come up" in p.stderr
    assert "IBSOL_MARKETPLACE_URL: 'tcp://nonsense' is not tcp://HOST:PORT" in p.stderr
    assert "gateway: stopped" in local_sh(env, "status").stdout


# --- every call ends by its timeout ----------------------------------------------------------------------------

def _peer(kind):
    """A TCP port for the op tool to dial: nothing listening ("none"), a listener that accepts and never speaks
    ("silent"), or one that accepts and closes at once ("closes"). Returns (port, stop)."""
    if kind == "none":
        return free_port(), lambda: None
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held, done = [], threading.Event()

    def serve():
        srv.settimeout(0.1)
        while not done.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            if kind == "closes":
                c.close()
            else:
                held.append(c)

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def stop():
        done.set()
        t.join()
        for c in held:
            c.close()
        srv.close()

    return srv.getsockname()[1], stop


def test_op_tool_ends_by_its_timeout_whatever_the_peer_does():
    """The compose health checks run `ibsol-op --timeout-ms T --connect-timeout-ms C --url tcp://... ping`. With
    libnng 1.5.2 one run in a few used to hang for good in nng_fini (an aio left alive) or abort in it (a
    reconnect still running): every run must end, by its timeout, with the reason."""
    exe = os.path.join(BIN, "cli/ibsol-op")
    env = dict(os.environ, IBSOL_DATA=tempfile.mkdtemp(prefix="ibs-", dir="/tmp"))
    # What starting and ending four programs at once costs here (ASan, a busy machine), apart from any call.
    t = time.time()
    for p in [subprocess.Popen([exe, "--help"], env=env, stdout=subprocess.DEVNULL) for _ in range(4)]:
        p.wait(timeout=60)
    startup = time.time() - t
    timeout_ms, connect_ms, runs = 600, 250, 12
    for kind in ("none", "silent", "closes"):
        port, stop = _peer(kind)
        try:
            cmd = [exe, "--timeout-ms", str(timeout_ms), "--connect-timeout-ms", str(connect_ms), "--url",
                   "tcp://127.0.0.1:%d" % port, "packager", "ping"]
            for batch in range(runs // 4):  # four at once: the machine has 2 cores
                procs = [(time.time(), subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE, text=True)) for _ in range(4)]
                for t0, p in procs:
                    limit = timeout_ms / 1000 + 1 + startup
                    try:
                        out, err = p.communicate(timeout=limit + 10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.communicate()
                        raise AssertionError("peer %s: ibsol-op still running %.1f s after its start" %
                                             (kind, time.time() - t0))
                    took = time.time() - t0
                    assert p.returncode == 1, (kind, p.returncode, err[-2000:])
                    assert json.loads(out) == {"status": "ERROR", "code": "unavailable",
                                               "msg": "the packager is not reachable (no connection within "
                                                      "%d ms)" % connect_ms}, (kind, out)
                    assert took < limit, "peer %s: took %.1f s, more than %.1f s" % (kind, took, limit)
        finally:
            stop()


def test_op_tool_reaches_runners_while_the_gateway_is_up(stack_factory):
    """Runners dial the gateway, which holds IBSOL_RUNNER_URL: the tool reaches them through the socket each runner
    also listens on, DATA/run/runner-<instance>.ipc; any of them, or the one named by --instance."""
    s = stack_factory(start=False)
    s.start("gateway")
    r1 = s.start("runner", key="r1", env={"IBSOL_INSTANCE": "r1"})
    r2 = s.start("runner", key="r2", env={"IBSOL_INSTANCE": "r2"})
    run = os.path.join(s.data, "run")
    for name in ("r1", "r2"):  # each says where in its start line
        wait_for("runner %s to listen on its own socket" % name,
                 lambda: "ibsol-op: ipc://%s/runner-%s.ipc" % (run, name) in s.log(name), timeout=20)
    assert os.stat(os.path.join(run, "runner-r1.ipc")).st_mode & 0o777 == 0o600

    rc, out, err = op(s, "--timeout-ms", "10000", "runner", "ping")
    assert rc == 0, err
    reply = json.loads(out)
    assert reply["service"] == "runner" and reply["pid"] in (r1.pid, r2.pid)
    for name, proc in (("r1", r1), ("r2", r2)):
        rc, out, err = op(s, "--instance", name, "--timeout-ms", "10000", "runner", "ping")
        assert rc == 0 and json.loads(out)["pid"] == proc.pid, err
    rc, out, err = op(s, "--instance", "r1", "--timeout-ms", "10000", "runner", "jobs.list", "{}")
    assert rc == 0 and json.loads(out)["status"] == "OK", out + err

    # A runner that stopped takes its socket away; the other still answers.
    assert s.stop("r2") == 0
    assert not os.path.exists(os.path.join(run, "runner-r2.ipc"))
    rc, out, err = op(s, "--timeout-ms", "10000", "runner", "ping")
    assert rc == 0 and json.loads(out)["pid"] == r1.pid, err
    rc, out, err = op(s, "--instance", "r2", "--connect-timeout-ms", "300", "runner", "ping")
    assert rc == 1 and json.loads(out)["code"] == "unavailable", out
    assert s.stop("r1") == 0
    rc, out, err = op(s, "runner", "ping")
    assert rc == 2
    assert err == ("ibsol-op: no runner to reach: no %s/runner-*.ipc (each runner on this host with this data "
                   "root listens there; give --url for another host)\n" % run)
