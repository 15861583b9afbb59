"""Bad configuration, the cases test_config_errors.py and test_tools.py leave out: deploy/local.sh start with a
port in use, a malformed tokens file or a data root that is not writable (it names the daemon, or the setting,
and why, and leaves nothing running), and two separate daemons given one address (the second refuses to start,
naming its URL setting)."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, SANITIZER_MARKS, SOURCE, binary, free_port

DAEMONS = ("packager", "marketplace", "gateway", "runner1", "runner2")


def local_sh(env, *args):
    return subprocess.run([os.path.join(SOURCE, "deploy/local.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def local_env(data, port=None):
    return dict(os.environ, IBSOL_DATA=data, IBSOL_HTTP_PORT=str(port or free_port()), IBSOL_RUNNERS="2",
                IBSOL_BIN=BIN)


def assert_nothing_running(env):
    st = local_sh(env, "status")
    assert st.returncode == 3, st.stdout + st.stderr
    for name in DAEMONS:
        assert "%s: stopped" % name in st.stdout, st.stdout


def test_local_sh_port_in_use():
    # something else holds the port: it accepts connections and never answers (start must not hang on it)
    data = tempfile.mkdtemp(prefix="ibs-", dir="/tmp") + "/var"
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = local_env(data, port)
        t = time.time()
        p = local_sh(env, "start")
        took = time.time() - t
        assert p.returncode == 1, p.stdout + p.stderr
        assert "ibsol: gateway did not come up" in p.stderr, p.stderr
        assert "IBSOL_HTTP_PORT: cannot listen on 127.0.0.1:%d" % port in p.stderr, p.stderr
        assert took < 30, took
        assert_nothing_running(env)


def test_local_sh_malformed_tokens_file():
    data = tempfile.mkdtemp(prefix="ibs-", dir="/tmp") + "/var"
    os.makedirs(data)
    with open(data + "/tokens", "w") as f:
        f.write("abcdefabcdefabcdef0123 alice superuser\n")
    env = local_env(data)
    p = local_sh(env, "start")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "ibsol: gateway did not come up" in p.stderr, p.stderr
    assert ("IBSOL_TOKENS: tokens file %s/tokens line 1: role 'superuser' is not admin or user" % data
            in p.stderr), p.stderr
    assert_nothing_running(env)


@pytest.fixture
def read_only_dir(tmp_path):
    """An existing folder nobody may write to: a read-only mount as root (root ignores modes), else mode 0500."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o500)
        yield str(ro)
        ro.chmod(0o700)
        return
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "ibsol-test-ro", str(ro)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip("as root, a folder root cannot write needs a read-only mount, and mount failed: %s"
                    % r.stderr.strip())
    try:
        yield str(ro)
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def test_local_sh_data_root_not_writable(read_only_dir):
    env = local_env(read_only_dir)
    p = local_sh(env, "start")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "ibsol: IBSOL_DATA: data root '%s' is not writable" % read_only_dir in p.stderr, p.stderr
    assert_nothing_running(env)
    below = read_only_dir + "/var"
    p = local_sh(local_env(below), "start")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "ibsol: IBSOL_DATA: cannot create data root '%s'" % below in p.stderr, p.stderr


def test_daemon_data_root_not_writable(read_only_dir):
    # the data root exists (so it is not a "cannot create" case) and cannot be written
    p = subprocess.run([binary("packager")], env=dict(os.environ, IBSOL_DATA=read_only_dir), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert "IBSOL_DATA: cannot create '%s/drive'" % read_only_dir in p.stderr, p.stderr


def test_tokens_file_missing_names_the_setting(tmp_path):
    env = dict(os.environ, IBSOL_DATA=str(tmp_path / "d"), IBSOL_HTTP_PORT=str(free_port()),
               IBSOL_TOKENS=str(tmp_path / "nope"))
    p = subprocess.run([binary("gateway")], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert ("IBSOL_TOKENS: tokens file %s cannot be opened: No such file or directory" % (tmp_path / "nope")
            in p.stderr), p.stderr


class First:
    """A daemon that holds an address while a second one is started on it."""

    def __init__(self, name, env):
        self.log = tempfile.NamedTemporaryFile(prefix="ibs-first-", suffix=".log", delete=False)
        self.p = subprocess.Popen([binary(name)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.name = name

    def wait_serving(self):
        deadline = time.time() + 20
        while time.time() < deadline:
            with open(self.log.name) as f:
                if "serving on" in f.read():
                    return
            assert self.p.poll() is None, open(self.log.name).read()
            time.sleep(0.05)
        raise AssertionError("%s did not start: %s" % (self.name, open(self.log.name).read()))

    def stop(self):
        assert self.p.poll() is None, "%s died while the second daemon tried its address" % self.name
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=30)
        text = open(self.log.name).read()
        assert rc == 0, text
        assert not any(m in text for m in SANITIZER_MARKS), text


def second(name, env):
    p = subprocess.run([binary(name)], env=env, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


def test_two_daemons_on_one_tcp_address(tmp_path):
    url = "tcp://127.0.0.1:%d" % free_port()
    base = dict(os.environ, IBSOL_DATA=str(tmp_path / "d"), IBSOL_HTTP_PORT=str(free_port()))
    first = First("packager", dict(base, IBSOL_PACKAGER_URL=url))
    try:
        first.wait_serving()
        rc, out = second("marketplace", dict(base, IBSOL_MARKETPLACE_URL=url))
        assert rc == 1 and "IBSOL_MARKETPLACE_URL: cannot listen on '%s': Address in use" % url in out, out
        # the gateway's own listeners: for runners, and for their events
        rc, out = second("gateway", dict(base, IBSOL_RUNNER_URL=url))
        assert rc == 1 and "IBSOL_RUNNER_URL: cannot listen on '%s': Address in use" % url in out, out
        rc, out = second("gateway", dict(base, IBSOL_EVENTS_URL=url))
        assert rc == 1 and "IBSOL_EVENTS_URL: cannot listen on '%s': Address in use" % url in out, out
    finally:
        first.stop()


def test_two_daemons_on_one_ipc_address(tmp_path):
    # two stacks started on one data root: the second packager finds the first one's socket alive
    base = dict(os.environ, IBSOL_DATA=str(tmp_path / "d"))
    url = "ipc://%s/run/packager.ipc" % (tmp_path / "d")
    first = First("packager", base)
    try:
        first.wait_serving()
        rc, out = second("packager", base)
        assert rc == 1 and "IBSOL_PACKAGER_URL: cannot listen on '%s': Address in use" % url in out, out
    finally:
        first.stop()
