"""tls+tcp:// between daemons: mutual certificates from one CA (IBSOL_TLS_CERT, IBSOL_TLS_KEY, IBSOL_TLS_CA).
A daemon answers a program holding a certificate from the CA, and no other: one without a certificate, one
with a certificate from another CA, one speaking plain tcp. The whole stack runs on tls+tcp (service sockets,
the runners' dial, the events), and bad TLS settings are start errors naming the setting and the file."""
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, binary, free_port, wait_for
from pki import Pki


@pytest.fixture(scope="module")
def pki():
    return Pki(tempfile.mkdtemp(prefix="ibs-pki-", dir="/tmp"))


def op(env, *args, timeout=60):
    p = subprocess.run([os.path.join(BIN, "cli/ibsol-op"), *args], env=env, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def tls_urls():
    return {"IBSOL_PACKAGER_URL": "tls+tcp://127.0.0.1:%d" % free_port(),
            "IBSOL_MARKETPLACE_URL": "tls+tcp://127.0.0.1:%d" % free_port(),
            "IBSOL_RUNNER_URL": "tls+tcp://127.0.0.1:%d" % free_port(),
            "IBSOL_EVENTS_URL": "tls+tcp://127.0.0.1:%d" % free_port()}


def test_a_tls_daemon_answers_only_its_ca(stack_factory, pki):
    urls = tls_urls()
    s = stack_factory(dict(urls, **pki.env()), start=False)
    s.start("packager")
    url = urls["IBSOL_PACKAGER_URL"]
    ping = ["--timeout-ms", "3000", "--connect-timeout-ms", "1000", "--url", url, "packager", "ping"]

    def answered():
        rc, out, _ = op(s.env, *ping)
        return rc == 0 and json.loads(out)["service"] == "packager"

    wait_for("the packager to answer over tls+tcp", answered, timeout=20)

    unreachable = {"status": "ERROR", "code": "unavailable",
                   "msg": "the packager is not reachable (no connection within 1000 ms)"}
    # A certificate from another CA (the program trusts both, so only the daemon can refuse it).
    rc, out, err = op(dict(s.env, **pki.env(pki.rogue, pki.both_cas)), *ping)
    assert rc == 1 and json.loads(out) == unreachable, err
    # Plain tcp to the TLS port.
    rc, out, err = op(s.env, *ping[:5], url.replace("tls+tcp://", "tcp://"), "packager", "ping")
    assert rc == 1 and json.loads(out) == unreachable, err
    # A TLS client that presents no certificate: the handshake fails, no SP byte ever comes back.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca[0])
    ctx.check_hostname = False
    host, port = url[len("tls+tcp://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"\x00SP\x00\x00\x30\x00\x00")  # an SP REQ header
                got = tls.recv(8)
        except (ssl.SSLError, ConnectionError) as e:
            got = e
    assert not isinstance(got, bytes) or got == b"", got
    # A program whose CA did not sign the daemon's certificate refuses the daemon.
    rc, out, err = op(dict(s.env, **pki.env(pki.rogue, pki.other_ca[0])), *ping)
    assert rc == 1 and json.loads(out) == unreachable, err
    # And the right certificate still gets in.
    rc, out, err = op(s.env, *ping)
    assert rc == 0, err


def test_the_whole_stack_over_tls(stack_factory, pki):
    """Service sockets, the runners' dial and the events all on tls+tcp; a runner with a certificate from
    another CA never attaches."""
    s = stack_factory(dict(tls_urls(), **pki.env()), start=False)
    for name in ("packager", "marketplace", "gateway", "runner"):
        s.start(name)
    s.wait_healthy()

    def whole():
        body = s.get("/healthz", timeout=5).json()
        ok = body["services"] == {"packager": "up", "marketplace": "up", "runner": "up"} and body["runners"] == 1
        return ok and body

    wait_for("every service up and the runner heard, over tls+tcp", whole, timeout=20)
    r = s.get("/marketplace/list")
    assert r.status_code == 200 and r.json()["status"] == "OK", r.text
    r = s.get("/jobs/list")
    assert r.status_code == 200, r.text

    s.start("runner", key="rogue", env=dict(pki.env(pki.rogue, pki.both_cas), IBSOL_INSTANCE="rogue"))
    time.sleep(3)  # heartbeats every 2 s: a rogue that got in would be counted by now
    assert s.get("/healthz", timeout=5).json()["runners"] == 1
    assert "rogue" not in s.get("/metrics", timeout=5).text


@pytest.mark.parametrize("case", ["unset", "missing", "not_pem", "wrong_key", "other_ca"])
def test_bad_tls_settings_refuse_to_start(pki, case):
    url = "tls+tcp://127.0.0.1:%d" % free_port()
    env = dict(os.environ, IBSOL_DATA=tempfile.mkdtemp(prefix="ibs-", dir="/tmp"), IBSOL_PACKAGER_URL=url,
               **pki.env())
    crt, key = pki.node
    if case == "unset":
        del env["IBSOL_TLS_KEY"]
        want = ("IBSOL_PACKAGER_URL '%s': IBSOL_TLS_KEY is not set: tls+tcp:// URLs need IBSOL_TLS_CERT, "
                "IBSOL_TLS_KEY and IBSOL_TLS_CA (PEM files)" % url)
    elif case == "missing":
        env["IBSOL_TLS_CA"] = "/nonexistent/ca.crt"
        want = "IBSOL_TLS_CA: cannot open '/nonexistent/ca.crt': No such file or directory"
    elif case == "not_pem":
        env["IBSOL_TLS_CERT"] = key
        want = "IBSOL_TLS_CERT: '%s' holds no PEM certificate" % key
    elif case == "wrong_key":
        env["IBSOL_TLS_KEY"] = pki.rogue[1]
        want = "IBSOL_TLS_KEY: '%s' is not the key of the certificate in IBSOL_TLS_CERT '%s'" % (pki.rogue[1], crt)
    else:
        env["IBSOL_TLS_CA"] = pki.other_ca[0]
        want = ("IBSOL_TLS_CERT: '%s' is not trusted by the CA in IBSOL_TLS_CA '%s': unable to get local issuer "
                "certificate" % (crt, pki.other_ca[0]))
    p = subprocess.run([binary("packager")], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stdout + p.stderr
    assert want in p.stdout + p.stderr
