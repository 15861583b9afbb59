"""What a build says it is: GET /api/v1/version (no token) and --version on every program, both from the one
generated header (build/common/ib_version.h: the version of CMake's project(), the git commit, the build type)."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN, SOURCE, assert_error

PROGRAMS = {
    "ibsol-gateway": "gateway/ibsol-gateway",
    "ibsol-packager": "packager/ibsol-packager",
    "ibsol-marketplace": "marketplace/ibsol-marketplace",
    "ibsol-runner": "runner/ibsol-runner",
    "ibsol-op": "cli/ibsol-op",
}


def project_version():
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        m = re.search(r"project\(ibsol VERSION ([0-9.]+)", f.read())
    assert m, "CMakeLists.txt has no project(ibsol VERSION ...)"
    return m.group(1)


def built_header():
    """The values this build was made with, as the generated header holds them."""
    with open(os.path.join(BIN, "common", "ib_version.h")) as f:
        text = f.read()
    return dict(re.findall(r'#define (IB_\w+) "([^"]*)"', text))


def build_type():
    with open(os.path.join(BIN, "CMakeCache.txt")) as f:
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", f.read(), re.M)
    return m.group(1) if m else ""


def is_git_commit(sha):
    """True when the source tree is a git checkout holding that commit."""
    r = subprocess.run(["git", "-C", SOURCE, "cat-file", "-e", sha + "^{commit}"], capture_output=True)
    return r.returncode == 0


def test_header_follows_cmake_and_git():
    h = built_header()
    assert h["IB_VERSION"] == project_version()
    assert h["IB_BUILD_TYPE"] == build_type()
    commit = h["IB_GIT_COMMIT"]
    # sources unpacked without git (a tarball, or a machine with no git installed) name no commit
    if not shutil.which("git") or subprocess.run(["git", "-C", SOURCE, "rev-parse"],
                                                 capture_output=True).returncode != 0:
        assert commit == "", "not a git checkout, yet the build names commit %r" % commit
    else:
        assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?", commit), commit
        assert is_git_commit(commit.split("-")[0]), "%s is not a commit of %s" % (commit, SOURCE)


def test_version_endpoint(stack):
    h = built_header()
    want = {"status": "OK", "version": project_version(), "api": "v1",
            "git": h["IB_GIT_COMMIT"] or None, "build_type": build_type()}
    for path in ("/api/v1/version", "/version", "/api/v2/version"):
        r = stack.get(path, token=None)  # no token needed: a client checks what it talks to before logging in
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/json"
        assert r.json() == want
    # A token, good or bad, changes nothing: the route is public, like healthz.
    assert stack.get("/api/v1/version", token="not-a-token").json() == want
    r = stack.post("/api/v1/version", {})
    assert_error(r, 405, "bad_request", "method POST is not allowed on /version")


def test_other_routes_still_need_a_token(stack):
    # Only healthz, version and openapi.json are public; a name close to them is not.
    for path in ("/api/v1/versions", "/api/v1/version/x", "/api/v1/metrics", "/api/v1/whoami"):
        r = stack.get(path, token=None)
        assert_error(r, 401, "unauthorized", "missing 'Authorization: Bearer <token>' header")


def version_line(prog):
    h = built_header()
    assert h["IB_VERSION"] == project_version()
    if h["IB_GIT_COMMIT"]:
        return "%s %s (git %s)\n" % (prog, h["IB_VERSION"], h["IB_GIT_COMMIT"])
    return "%s %s\n" % (prog, h["IB_VERSION"])


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_version_flag(prog):
    want = version_line(prog)
    exe = os.path.join(BIN, PROGRAMS[prog])
    # A wrong setting in the environment does not stop --version (nor --help): that is when people ask.
    env = dict(os.environ, IBSOL_WORKERS="many", IBSOL_DATA="/nonexistent/ibsol")
    for args in (["--version"], ["--debug", "--version"]):
        r = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout, r.stderr) == (0, want, "")
    r = subprocess.run([exe, "--help"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and re.search(r"^  --version +print the version and exit$", r.stdout, re.M), r.stdout


def test_client_version_flag():
    """ibsol, the client command, says it the same way (its own argument parser, the same line)."""
    exe = os.path.join(BIN, "cli", "ibsol")
    for args in (["--version"], ["-V"], ["--quiet", "--version"]):
        r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, IBSOL_URL="http://127.0.0.1:9", IBSOL_TOKEN="x"))
        assert (r.returncode, r.stdout, r.stderr) == (0, version_line("ibsol"), ""), args

