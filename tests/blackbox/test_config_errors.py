"""Bad configuration: each daemon refuses to start with a message naming the setting."""
import os
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, assert_error, binary, free_port


def run(name, env_extra, *args):
    root = tempfile.mkdtemp(prefix="ibs-", dir="/tmp")
    env = dict(os.environ, IBSOL_DATA=root + "/d", IBSOL_HTTP_PORT=str(free_port()))
    env.update(env_extra)
    p = subprocess.run([binary(name), *args], env=env, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("name", ["gateway", "packager", "marketplace", "runner"])
def test_help_lists_settings(name):
    rc, out = run(name, {}, "--help")
    assert rc == 0
    assert "--data" in out and "[IBSOL_DATA" in out and "--help" in out


@pytest.mark.parametrize("name", ["packager", "marketplace"])
def test_bad_url(name):
    rc, out = run(name, {"IBSOL_%s_URL" % name.upper(): "htp://x"})
    assert rc == 1
    assert "IBSOL_%s_URL: 'htp://x' is not a URL this server speaks" % name.upper() in out


def test_bad_number_and_unknown_flag():
    rc, out = run("packager", {"IBSOL_WORKERS": "many"})
    assert rc == 1 and "IBSOL_WORKERS: 'many' is not a whole number" in out
    rc, out = run("packager", {}, "--wrokers=3")
    assert rc == 1 and "unknown argument '--wrokers=3'" in out


def test_two_services_on_one_address():
    rc, out = run("gateway", {"IBSOL_PACKAGER_URL": "tcp://127.0.0.1:7001", "IBSOL_MARKETPLACE_URL": "tcp://127.0.0.1:7001"})
    assert rc == 1
    assert "IBSOL_PACKAGER_URL and IBSOL_MARKETPLACE_URL are both 'tcp://127.0.0.1:7001'" in out


def test_port_in_use():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, out = run("gateway", {"IBSOL_HTTP_PORT": str(port)})
    assert rc == 1
    assert "IBSOL_HTTP_PORT: cannot listen on 127.0.0.1:%d" % port in out


def test_data_root_not_writable(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/ibsol-cannot-exist"
    else:
        target = str(tmp_path / "ro" / "d")
        os.makedirs(tmp_path / "ro")
        os.chmod(tmp_path / "ro", 0o500)
    rc, out = run("marketplace", {"IBSOL_DATA": target})
    assert rc == 1
    assert "IBSOL_DATA: cannot create data root '%s'" % target in out


def test_tokens_file_missing_or_malformed(tmp_path):
    rc, out = run("gateway", {"IBSOL_TOKENS": str(tmp_path / "nope")})
    assert rc == 1 and str(tmp_path / "nope") in out
    bad = tmp_path / "tokens"
    bad.write_text("abcdefabcdefabcdef0123 alice superuser\n")
    rc, out = run("gateway", {"IBSOL_TOKENS": str(bad)})
    assert rc == 1 and "line 1" in out and "superuser" in out


def test_tokens_file_fails_closed(stack_factory):
    """The tokens file while the gateway runs: deleted, no token is valid until it is back; an edit with a bad line
    (here a revocation with a typo elsewhere) refuses every token, the revoked one included, until it is fixed.
    The client hears only 401 "unknown token"; the log says why, naming the file and the line."""
    s = stack_factory(start=False)
    s.start("gateway")
    path = os.path.join(s.data, "tokens")

    def status(token):
        return s.get("/api/v2/files/admin/a.txt", token=token, timeout=10)

    deadline = time.time() + 20
    while True:
        try:
            s.put_file("/admin/a.txt", b"hello")
            break
        except requests.ConnectionError:
            assert time.time() < deadline, s.log("gateway")
            time.sleep(0.1)
    assert status(ADMIN_TOKEN).status_code == 200
    assert status(BOB_TOKEN).status_code == 403  # known, but /admin is not his

    os.unlink(path)
    for token in (ADMIN_TOKEN, BOB_TOKEN):
        assert_error(status(token), 401, "unauthorized", "unknown token")
    assert ("tokens file %s cannot be opened: No such file or directory: every token is refused until the file "
            "is fixed" % path) in s.log("gateway")

    # Back, but revoking bob with a typo in alice's line: nobody gets in, bob included.
    with open(path, "w") as f:
        f.write("%s admin admin\n%s alice usr\n" % (ADMIN_TOKEN, ALICE_TOKEN))
    for token in (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN):
        assert_error(status(token), 401, "unauthorized", "unknown token")
    assert ("tokens file %s line 2: role 'usr' is not admin or user: every token is refused until the file is "
            "fixed" % path) in s.log("gateway")

    # Fixed in place: the file's tokens, and only those.
    with open(path, "w") as f:
        f.write("%s admin admin\n%s alice user\n" % (ADMIN_TOKEN, ALICE_TOKEN))
    assert status(ADMIN_TOKEN).status_code == 200
    assert status(ALICE_TOKEN).status_code == 403
    assert_error(status(BOB_TOKEN), 401, "unauthorized", "unknown token")
    assert "tokens file %s reloaded: 2 tokens" % path in s.log("gateway")
