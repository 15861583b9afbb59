"""The `ibsol` client command against the real stack, as a user runs it: login and profiles, local packaging
byte-identical to solution/create, publish/install/run/jobs/files, the local test gate (`ibsol test`), and every
bad input with its one-line message and exit code: an unreachable server, a wrong token, a missing file, a folder
without package.json, an interrupted upload (resumed), Ctrl-C while following a job. A run under tmux sees the
progress bars a terminal gets."""
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time

import pytest

from conftest import ADMIN_TOKEN, ALICE_TOKEN, BIN, SOURCE, free_port, wait_for
from gen_docs import columns_pdf

CLI = os.path.join(BIN, "cli", "ibsol")
EXAMPLE = os.path.join(SOURCE, "docs", "example-solution")
FIXTURE = os.path.join(SOURCE, "tests", "fixtures", "solutions", "invoice")
DOCS = os.path.join(SOURCE, "tests", "fixtures", "docs")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EX_USAGE, EX_UNREACHABLE, EX_AUTH, EX_NOT_FOUND, EX_SERVER, EX_LOCAL, EX_DIFF, EX_JOB, EX_INTERRUPTED = (
    2, 3, 4, 5, 6, 7, 8, 9, 130)


def project_version():
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        return re.search(r"project\(ibsol VERSION (\S+)", f.read()).group(1)


def cli_env(home, url=None, token=None, **extra):
    """A clean environment: a home of its own (config and upload state in it), no IBSOL_* of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBSOL_") and k not in ("XDG_CONFIG_HOME",
                                                                                        "XDG_STATE_HOME", "NO_COLOR")}
    env.update(HOME=str(home), OMP_THREAD_LIMIT="1", ASAN_OPTIONS="detect_leaks=1",
               LSAN_OPTIONS="suppressions=" + os.path.join(SOURCE, "tests", "lsan.supp"))
    if url:
        env["IBSOL_URL"] = url
    if token:
        env["IBSOL_TOKEN"] = token
    env.update(extra)
    return env


def check(p, rc):
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
    return p


def ibsol(env, *args, rc=0, input=None, timeout=120, cwd=None):
    p = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, input=input, timeout=timeout, cwd=cwd)
    return check(p, rc)


@pytest.fixture(scope="module", autouse=True)
def cli_exists():
    if not os.path.exists(CLI):
        pytest.fail("no ibsol binary at %s (build it, or set IBSOL_BIN)" % CLI)


@pytest.fixture
def admin(stack, tmp_path):
    return cli_env(tmp_path, stack.url, ADMIN_TOKEN)


@pytest.fixture(scope="module")
def installed(stack, tmp_path_factory):
    """The example solution published and installed through the command itself."""
    env = cli_env(tmp_path_factory.mktemp("home"), stack.url, ADMIN_TOKEN)
    p = ibsol(env, "publish", EXAMPLE)
    assert re.fullmatch(r"published invoice_demo 1\.0\.0 \(sha256 [0-9a-f]{64}, \d+ bytes\)\n", p.stdout), p.stdout
    assert ibsol(env, "install", "invoice_demo").stdout == "installed invoice_demo 1.0.0\n"
    return "invoice_demo"


# --- version, help, usage ---------------------------------------------------------------------------------------

def test_version_help_and_usage(tmp_path):
    env = cli_env(tmp_path)
    # as every ibsol program says it: the project version, and the commit when built from a checkout
    assert re.fullmatch(r"ibsol %s( \(git [0-9a-f]{12}(-dirty)?\))?\n" % re.escape(project_version()),
                        ibsol(env, "--version").stdout)
    for cmd in ("login", "package", "publish", "install", "uninstall", "unpublish", "list", "info", "run", "jobs",
                "files", "test"):
        out = ibsol(env, cmd, "--help").stdout
        assert out.startswith("usage: ibsol %s" % cmd) and "Exit codes:" in out, out
    p = ibsol(env, "frobnicate", rc=EX_USAGE)
    assert p.stderr == "ibsol: 'frobnicate' is not an ibsol command; see 'ibsol --help'\n"
    p = ibsol(env, "package", rc=EX_USAGE)
    assert p.stderr == ("ibsol: package: missing argument (usage: ibsol package DIR [-o FILE]); "
                        "see 'ibsol package --help'\n")
    p = ibsol(env, "list", rc=EX_USAGE)
    assert p.stderr == ("ibsol: list: no server: run 'ibsol login URL' (profile 'default') or set IBSOL_URL; "
                        "see 'ibsol list --help'\n")


# --- login, profiles, tokens, reachability ------------------------------------------------------------------------

def test_login_keeps_profiles_in_a_private_file(stack, tmp_path):
    env = cli_env(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    p = ibsol(env, "login", stack.url, "--token", ALICE_TOKEN)
    cfg = tmp_path / "xdg" / "ibsol" / "config"
    assert p.stdout == "logged in to %s as alice (profile 'default', saved in %s)\n" % (stack.url, cfg)
    # the token from standard input, into a second profile
    ibsol(env, "login", stack.url + "/", "--profile", "ops", input=ADMIN_TOKEN + "\n")
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cfg.parent).st_mode) == 0o700
    profiles = json.loads(cfg.read_text())["profiles"]
    assert profiles == {"default": {"url": stack.url, "token": ALICE_TOKEN},
                        "ops": {"url": stack.url, "token": ADMIN_TOKEN}}
    # each profile acts as its user: alice may not publish, the admin profile may list the catalog
    assert ibsol(env, "list").returncode == 0
    assert ibsol(env, "--profile", "ops", "list").returncode == 0
    p = ibsol(env, "unpublish", "nothing@1.0.0", rc=EX_AUTH)
    assert p.stderr.count("\n") == 1 and "(HTTP 403 forbidden, POST /marketplace/unpublish)" in p.stderr, p.stderr
    # IBSOL_TOKEN overrides the profile's token
    p = ibsol(dict(env, IBSOL_TOKEN="not-a-token"), "list", rc=EX_AUTH)
    assert p.stderr == ("ibsol: the server at %s refused the token (HTTP 401 unauthorized): unknown token; "
                        "run 'ibsol login %s --token TOKEN'\n" % (stack.url, stack.url))


def test_wrong_token_is_refused_at_login_and_not_saved(stack, tmp_path):
    env = cli_env(tmp_path)
    p = ibsol(env, "login", stack.url, "--token", "wrong-token", rc=EX_AUTH)
    assert p.stderr == ("ibsol: the server at %s refused the token (HTTP 401 unauthorized): unknown token; "
                        "run 'ibsol login %s --token TOKEN'\n" % (stack.url, stack.url))
    assert not (tmp_path / ".config" / "ibsol" / "config").exists()


def test_unreachable_server(tmp_path):
    url = "http://127.0.0.1:%d" % free_port()
    p = ibsol(cli_env(tmp_path, url, ADMIN_TOKEN), "list", rc=EX_UNREACHABLE)
    assert p.stderr == "ibsol: cannot reach the server at %s: Couldn't connect to server\n" % url
    p = ibsol(cli_env(tmp_path), "login", url, "--token", "t", rc=EX_UNREACHABLE)
    assert p.stderr == "ibsol: cannot reach the server at %s: Couldn't connect to server\n" % url


# --- package ------------------------------------------------------------------------------------------------------

def test_package_is_byte_identical_to_solution_create(stack, admin, tmp_path):
    shutil.copytree(EXAMPLE, os.path.join(stack.data, "drive/admin/cli_pkg"))
    r = stack.post("/solution/create", {"content_folder": "/admin/cli_pkg", "output_folder": "/admin/cli_pkg_out"})
    assert r.status_code == 200, r.text
    server = open(os.path.join(stack.data, "drive", r.json()["ibsolution_path"].lstrip("/")), "rb").read()
    p = ibsol(admin, "package", EXAMPLE, "-o", str(tmp_path))
    local = (tmp_path / "invoice_demo-1.0.0.ibsolution").read_bytes()
    assert local == server
    assert p.stdout == "invoice_demo 1.0.0 -> %s/invoice_demo-1.0.0.ibsolution (%d bytes, sha256 %s)\n" % (
        tmp_path, len(local), hashlib.sha256(local).hexdigest())
    # the default name, in the current folder; the server needs no login for this
    ibsol(cli_env(tmp_path), "package", EXAMPLE, cwd=str(tmp_path / ".."))
    assert (tmp_path / ".." / "invoice_demo-1.0.0.ibsolution").read_bytes() == server


def test_package_errors_are_the_servers(stack, admin, tmp_path):
    sol = tmp_path / "bad"
    shutil.copytree(EXAMPLE, sol)
    (sol / "refiners" / "other.ibrefiner").write_text(
        '{"fields": [{"name": "total", "formula": "number(nubmer(INPUT_COL))"}]}')
    shutil.copytree(sol, os.path.join(stack.data, "drive/admin/cli_bad"))
    r = stack.post("/solution/create", {"content_folder": "/admin/cli_bad", "output_folder": "/admin/cli_bad_out"})
    assert r.status_code == 400, r.text
    p = ibsol(admin, "package", str(sol), "-o", str(tmp_path), rc=EX_LOCAL)
    assert p.stderr == "ibsol: %s\n" % r.json()["msg"]
    assert "unknown function 'nubmer'" in p.stderr
    assert not list(tmp_path.glob("*.ibsolution"))


def test_folder_without_package_json(admin, tmp_path):
    (tmp_path / "sol").mkdir()
    (tmp_path / "sol" / "flow.json").write_text("{}")
    p = ibsol(admin, "package", str(tmp_path / "sol"), rc=EX_LOCAL)
    assert p.stderr == "ibsol: folder '%s' has no package.json\n" % (tmp_path / "sol")
    p = ibsol(admin, "publish", str(tmp_path / "sol"), rc=EX_LOCAL)
    assert p.stderr == "ibsol: folder '%s' has no package.json\n" % (tmp_path / "sol")
    p = ibsol(admin, "package", str(tmp_path / "nowhere"), rc=EX_LOCAL)
    assert p.stderr == "ibsol: folder '%s': No such file or directory\n" % (tmp_path / "nowhere")


# --- marketplace and runs -------------------------------------------------------------------------------------

def test_catalog_commands(installed, admin):
    out = ibsol(admin, "list").stdout.splitlines()
    assert out[0].split() == ["NAME", "LATEST", "VERSIONS", "INSTALLED", "DESCRIPTION"]
    assert out[1].startswith("invoice_demo  1.0.0   1.0.0     1.0.0      Reads invoices"), out
    apps = json.loads(ibsol(admin, "list", "--json").stdout)
    assert [a["name"] for a in apps] == ["invoice_demo"]
    info = ibsol(admin, "info", "invoice_demo").stdout
    assert info.startswith("invoice_demo 1.0.0\nReads invoices") and "installed:   1.0.0" in info, info
    assert "\nindustry:    Finance\n" in info and "\nlong_description: An example solution" in info, info
    assert json.loads(ibsol(admin, "info", "invoice_demo@1.0.0", "--json").stdout)["manifest"]["name"] == "invoice_demo"
    p = ibsol(admin, "info", "no_such_solution", rc=EX_NOT_FOUND)
    assert p.stderr.count("\n") == 1 and "(HTTP 404 not_found, GET /marketplace/info?name=no_such_solution)" in p.stderr
    p = ibsol(admin, "install", "invoice_demo@9.9.9", rc=EX_NOT_FOUND)
    assert p.stderr.count("\n") == 1 and "9.9.9" in p.stderr


def test_run_sync_table_json_csv(installed, admin):
    pdf = os.path.join(EXAMPLE, "demo_data", "invoice-1002.pdf")
    txt = os.path.join(EXAMPLE, "demo_data", "invoice-1001.txt")
    recs = json.loads(ibsol(admin, "run", "invoice_demo@1.0.0", txt, pdf, "--json").stdout)["records"]
    assert [r["file_name"] for r in recs] == ["invoice-1001.txt", "invoice-1002.pdf"]
    fields = {f["key"]: f["value"] for f in recs[0]["results"]}
    assert fields["invoice_no"] == "INV-1001"
    table = ibsol(admin, "run", "invoice_demo", txt).stdout.splitlines()
    assert table[0].split() == ["FILE", "RECORD", "FIELD", "VALUE"]
    assert re.search(r"^invoice-1001\.txt\s+0\s+invoice_no\s+INV-1001$", "\n".join(table), re.M), table
    csv = ibsol(admin, "run", "invoice_demo", txt, "--csv").stdout.splitlines()  # CRLF lines, read as text
    keys = csv[0].split(",")
    assert keys[:3] == ["file_name", "file_index", "record_index"] and keys[-1] == "error"
    row = dict(zip(keys, csv[1].split(",")))
    assert row["invoice_no"] == "INV-1001" and row["file_name"] == "invoice-1001.txt"
    # a file that fails fails the command (as it fails ibsol-runner --once); the records are printed all the same
    p = ibsol(admin, "run", "invoice_demo", txt, os.path.join(DOCS, "corrupt.png"), rc=EX_JOB)
    assert p.stderr == "ibsol: 1 of 2 files failed; the first: corrupt.png: unsupported format\n"
    assert re.search(r"^corrupt\.png\s+0\s+\(file\)\s+ERROR: corrupt\.png: unsupported format$", p.stdout, re.M), p.stdout
    assert "INV-1001" in p.stdout


def test_missing_file(installed, admin, tmp_path):
    p = ibsol(admin, "run", "invoice_demo", str(tmp_path / "nope.pdf"), rc=EX_LOCAL)
    assert p.stderr == "ibsol: '%s': No such file or directory\n" % (tmp_path / "nope.pdf")
    p = ibsol(admin, "files", "put", str(tmp_path / "nope.pdf"), "/admin/x.pdf", rc=EX_LOCAL)
    assert p.stderr == "ibsol: '%s': No such file or directory\n" % (tmp_path / "nope.pdf")
    p = ibsol(admin, "run", "invoice_demo", "--folder", "nope", rc=EX_LOCAL, cwd=str(tmp_path))
    assert p.stderr == "ibsol: folder 'nope': No such file or directory\n"
    # an absolute path that is not here is a drive folder, which the server does not have either
    p = ibsol(admin, "run", "invoice_demo", "--folder", "/admin/nope", rc=EX_NOT_FOUND)
    assert p.stderr == ("ibsol: input_folder: '/admin/nope' does not exist (HTTP 404 not_found, "
                        "POST /solution/run)\n")


def test_run_a_local_folder_and_the_jobs_commands(installed, admin, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(os.path.join(EXAMPLE, "demo_data"), folder)
    p = ibsol(admin, "run", "invoice_demo", "--folder", str(folder), "--json")
    recs = json.loads(p.stdout)["records"]
    assert sorted(r["file_name"] for r in recs) == ["invoice-1001.txt", "invoice-1002.pdf", "invoice-1003-scan.png"]
    # piped: plain lines, no bar and no escape codes
    assert "\r" not in p.stderr and "\033" not in p.stderr
    lines = p.stderr.splitlines()
    assert re.fullmatch(r"upload 3/3 files: \S+ \S+/\S+ \S+ in \d+\.\d s", lines[0]), lines
    job = re.fullmatch(r"job (\S+) started \(output in /admin/\.ibsol/cli/[^/]+/out\)", lines[1]).group(1)
    assert UUID.fullmatch(job)
    assert lines[-1] == "job %s: Completed 3/3 files" % job, lines
    # the jobs commands on that job
    assert ibsol(admin, "jobs", "status", job).stdout == "job %s: COMPLETE 3/3 files: Completed 3/3 files\n" % job
    listing = ibsol(admin, "jobs", "list").stdout
    assert re.search(r"^%s\s+\S+\s+COMPLETE\s+3/3" % job, listing, re.M), listing
    assert json.loads(ibsol(admin, "jobs", "results", job, "--json").stdout)["records"] == recs
    assert ibsol(admin, "jobs", "watch", job).stderr.endswith("job %s: Completed 3/3 files\n" % job)
    assert ibsol(admin, "jobs", "cancel", job).stdout == "job %s: already ended\n" % job
    p = ibsol(admin, "jobs", "status", "0" * 8 + "-0000-0000-0000-" + "0" * 12, rc=EX_NOT_FOUND)
    assert p.stderr.count("\n") == 1
    # --no-wait: only the job id
    job2 = ibsol(admin, "run", "invoice_demo", "--folder", str(folder), "--no-wait").stdout.strip()
    assert UUID.fullmatch(job2) and job2 != job


def test_files_commands(stack, admin, tmp_path):
    src = tmp_path / "a b.txt"
    src.write_text("hello drive\n")
    assert ibsol(admin, "files", "put", str(src), "/admin/cli files/").stdout == (
        "uploaded %s -> /admin/cli files/a b.txt\n" % src)
    ls = ibsol(admin, "files", "ls", "/admin/cli files").stdout.splitlines()
    assert ls[0].split() == ["NAME", "TYPE", "SIZE", "MODIFIED"] and ls[1].startswith("a b.txt  file  12  "), ls
    ibsol(admin, "files", "cp", "/admin/cli files/a b.txt", "/admin/cli files/copy.txt")
    ibsol(admin, "files", "get", "/admin/cli files/copy.txt", str(tmp_path / "got.txt"))
    assert (tmp_path / "got.txt").read_text() == "hello drive\n"
    assert ibsol(admin, "files", "get", "/admin/cli files/copy.txt", "-").stdout == "hello drive\n"
    ibsol(admin, "files", "rm", "/admin/cli files/copy.txt")
    p = ibsol(admin, "files", "get", "/admin/cli files/copy.txt", str(tmp_path / "x"), rc=EX_NOT_FOUND)
    assert p.stderr == "ibsol: '/admin/cli files/copy.txt' does not exist on the drive\n"
    assert not (tmp_path / "x").exists()


def test_interrupted_upload_resumes_from_the_servers_copy(stack, admin, tmp_path):
    data = os.urandom(3 << 20)
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    on_disk = os.path.join(stack.data, "drive/admin/cli_up/big.bin")
    # 64 KiB chunks at 1 MiB/s: three seconds, interrupted once the server holds part of it
    args = [CLI, "--chunk-size", "64K", "--limit-rate", "1M", "files", "put", str(big), "/admin/cli_up/big.bin"]
    proc = subprocess.Popen(args, env=admin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for("part of the upload", lambda: os.path.exists(on_disk) and os.path.getsize(on_disk) >= 128 << 10,
             timeout=20, interval=0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    check(subprocess.CompletedProcess(args, proc.returncode, out, err), EX_INTERRUPTED)
    held = os.path.getsize(on_disk)
    assert 0 < held < len(data) and held % (64 << 10) == 0, held
    m = re.fullmatch(r"ibsol: interrupted: '/admin/cli_up/big\.bin' holds (\S+ \S+) of 3\.0 MiB; "
                     r"run the same command again to resume\n", err)
    assert m, err
    # the same command again goes on from the server's copy and ends with the whole file
    p = ibsol(admin, "--chunk-size", "64K", "files", "put", str(big), "/admin/cli_up/big.bin")
    assert p.stderr.startswith("resuming the upload of '%s' to '/admin/cli_up/big.bin' at " % big), p.stderr
    assert open(on_disk, "rb").read() == data
    # once done, a new upload starts from the beginning (nothing left to resume)
    p = ibsol(admin, "--chunk-size", "64K", "files", "put", str(big), "/admin/cli_up/big.bin")
    assert "resuming" not in p.stderr and open(on_disk, "rb").read() == data


def test_ctrl_c_while_following_a_job(stack, installed, admin, tmp_path):
    folder = os.path.join(stack.data, "drive/admin/cli_slow/in")
    os.makedirs(folder)
    pdf = columns_pdf(15)  # about half a second per copy under the sanitizers
    for i in range(40):
        shutil.copy(pdf, os.path.join(folder, "f%02d.pdf" % i))
    args = [CLI, "run", "invoice_demo", "--folder", "/admin/cli_slow/in"]
    proc = subprocess.Popen(args, env=admin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    job = re.fullmatch(r"job (\S+) started \(output in /admin/cli_slow/out\)\n", first).group(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    check(subprocess.CompletedProcess(args, proc.returncode, out, first + err), EX_INTERRUPTED)
    assert err.splitlines()[-1] == ("ibsol: interrupted; job %s goes on: follow it with 'ibsol jobs watch %s', "
                                    "stop it with 'ibsol jobs cancel %s'" % (job, job, job))
    assert out == ""
    # it asked nothing and the job goes on; cancelling it ends it CANCELLED, which watch reports as a failure
    assert ibsol(admin, "jobs", "cancel", job).stdout in ("job %s: cancel requested\n" % job,
                                                         "job %s: already ended\n" % job)
    p = ibsol(admin, "jobs", "watch", job, rc=EX_JOB, timeout=60)
    assert p.stderr.splitlines()[-1].startswith("ibsol: job %s ended CANCELLED: Cancelled after " % job), p.stderr


def test_progress_bars_on_a_terminal(installed, admin, tmp_path):
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing: deploy/install-deps.sh --test installs it")
    folder = tmp_path / "in"
    shutil.copytree(os.path.join(EXAMPLE, "demo_data"), folder)
    done = tmp_path / "done"
    session = "ibsol-cli-%d" % os.getpid()
    env_words = " ".join("%s=%s" % (k, shlex_quote(admin[k])) for k in ("HOME", "IBSOL_URL", "IBSOL_TOKEN",
                                                                         "ASAN_OPTIONS", "LSAN_OPTIONS"))
    cmd = "env %s %s run invoice_demo --folder %s; echo $? > %s; sleep 60" % (env_words, CLI, folder, done)
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd], check=True)
    try:
        wait_for("the command in tmux", lambda: done.exists() and done.read_text().strip(), timeout=60)
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                check=True).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session])
    assert done.read_text().strip() == "0", screen
    # the upload's bar (files and bytes) and the job's bar, as they ended, then the table of fields
    assert re.search(r"^upload 3/3 files \[#+\] \S+ \S+/\S+ \S+", screen, re.M), screen
    assert re.search(r"^job \[#+\] 3/3 files", screen, re.M), screen
    assert re.search(r"^FILE\s+RECORD\s+FIELD\s+VALUE", screen, re.M), screen
    assert re.search(r"invoice-1001\.txt\s+0\s+invoice_no\s+INV-1001", screen), screen


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


# --- ibsol test: the authors' gate --------------------------------------------------------------------------------

def test_ibsol_test_compares_fields(tmp_path):
    env = cli_env(tmp_path)
    sol = tmp_path / "sol"
    shutil.copytree(FIXTURE, sol)
    p = ibsol(env, "test", str(sol), rc=EX_LOCAL)
    assert p.stderr == ("ibsol: folder '%s' has no tests/ folder (documents to test, each with "
                        "<document>.expected.json beside it)\n" % sol)
    (sol / "tests").mkdir()
    shutil.copy(os.path.join(DOCS, "invoice.txt"), sol / "tests")
    shutil.copy(os.path.join(DOCS, "batch.txt"), sol / "tests")
    p = ibsol(env, "test", str(sol), rc=EX_DIFF)
    assert p.stdout.splitlines()[0] == ("FAIL tests/batch.txt")
    assert "no expected file tests/batch.txt.expected.json ('ibsol test --update' writes it)" in p.stdout
    p = ibsol(env, "test", str(sol), "--update")
    assert p.stdout == ("wrote tests/batch.txt.expected.json\nwrote tests/invoice.txt.expected.json\n"
                        "2 passed, 0 failed\n")
    expected = json.loads((sol / "tests" / "invoice.txt.expected.json").read_text())
    assert expected["invoice_no"] == "INV-2024-001" and expected["total"] == 1344.06
    assert len(json.loads((sol / "tests" / "batch.txt.expected.json").read_text())) == 3  # one per record
    assert ibsol(env, "test", str(sol)).stdout == "PASS tests/batch.txt\nPASS tests/invoice.txt\n2 passed, 0 failed\n"
    # a wrong value, a field the solution does not have, and one it has but the file does not list
    expected["total"] = 1.5
    expected["tax"] = 2
    del expected["vendor"]
    (sol / "tests" / "invoice.txt.expected.json").write_text(json.dumps(expected))
    p = ibsol(env, "test", str(sol), rc=EX_DIFF)
    assert p.stdout.splitlines()[1:] == [
        "FAIL tests/invoice.txt (3 differences)",
        "    ~ total: expected 1.5, got 1344.06",
        "    - tax: expected 2, but the solution has no such field",
        "    + vendor: got \"ACME Corporation\", which the expected file does not list",
        "1 passed, 1 failed",
    ], p.stdout
    # a document the engine cannot read fails too
    shutil.copy(os.path.join(DOCS, "corrupt.png"), sol / "tests")
    p = ibsol(env, "test", str(sol), rc=EX_DIFF)
    assert "FAIL tests/corrupt.png\n    the document failed: corrupt.png: unsupported format\n" in p.stdout
    # a bad expected file is a local file error
    (sol / "tests" / "invoice.txt.expected.json").write_text("{oops")
    p = ibsol(env, "test", str(sol), rc=EX_LOCAL)
    assert "    tests/invoice.txt.expected.json: line 1 column 5: string or '}' expected near 'oops'\n" in p.stdout


# --- what is installed with it ------------------------------------------------------------------------------------

def test_completion_completes_commands_and_sub_commands():
    # bash-completion's helpers stubbed: the script's own logic is what is tested
    script = r'''
_init_completion() { words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; cur=${COMP_WORDS[COMP_CWORD]};
                     prev=${COMP_WORDS[COMP_CWORD-1]}; }
_filedir() { COMPREPLY+=(FILES); }
source "$1"
complete -p ibsol
for line in "ibsol " "ibsol jo" "ibsol jobs " "ibsol --profile x files " "ibsol run --f" "ibsol run sol "; do
  read -ra COMP_WORDS <<< "$line"; [[ $line == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _ibsol; echo "${COMPREPLY[*]}"
done
'''
    p = subprocess.run(["bash", "-c", script, "bash", os.path.join(SOURCE, "cli", "ibsol.bash-completion")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "complete -F _ibsol ibsol"
    assert lines[1].split()[:12] == ["login", "package", "publish", "install", "uninstall", "unpublish", "list",
                                     "info", "run", "jobs", "files", "test"]
    assert lines[2:] == ["jobs", "list status results cancel watch", "ls put get rm cp", "--folder", "FILES"]


def test_install_puts_the_man_page_and_completion_beside_the_binary(tmp_path):
    if not os.path.exists(os.path.join(BIN, "cmake_install.cmake")):
        pytest.skip("IBSOL_BIN is not a CMake build folder")
    p = subprocess.run(["cmake", "--install", os.path.join(BIN, "cli"), "--prefix", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert os.access(tmp_path / "bin" / "ibsol", os.X_OK)
    assert (tmp_path / "share" / "man" / "man1" / "ibsol.1").read_text().startswith(".\\\" ibsol(1)")
    assert "complete -F _ibsol ibsol" in (tmp_path / "share" / "bash-completion" / "completions" / "ibsol").read_text()
    # the man page renders without a warning from groff
    if shutil.which("man"):
        r = subprocess.run(["man", "--warnings", "-l", str(tmp_path / "share/man/man1/ibsol.1")],
                           capture_output=True, text=True, timeout=60, env=dict(os.environ, MANWIDTH="100"))
        assert r.returncode == 0 and r.stderr == "" and "EXIT STATUS" in r.stdout, r.stderr


def test_the_container_entrypoint_hands_client_commands_to_the_client(tmp_path):
    # in the image `ibsol` is the entrypoint (daemons, op, healthcheck) and the client is ibsol-client
    (tmp_path / "bin").mkdir()
    os.symlink(CLI, tmp_path / "bin" / "ibsol-client")
    env = cli_env(tmp_path, IBSOL_BIN_DIR=str(tmp_path / "bin"))
    entry = os.path.join(SOURCE, "deploy", "docker", "entrypoint.sh")
    p = check(subprocess.run([entry, "--version"], env=env, capture_output=True, text=True, timeout=60), 0)
    assert p.stdout.startswith("ibsol %s" % project_version())
    p = check(subprocess.run([entry, "package", str(tmp_path / "nowhere")], env=env, capture_output=True, text=True,
                             timeout=60), EX_LOCAL)
    assert p.stderr == "ibsol: folder '%s': No such file or directory\n" % (tmp_path / "nowhere")
