"""Bad configuration: each daemon refuses to start with a message naming the setting."""
import os
import subprocess
import tempfile

import pytest

from conftest import binary, free_port


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
