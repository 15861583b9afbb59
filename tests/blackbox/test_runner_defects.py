"""Runner defects a hostile pass found, each pinned by a test: every solution/run job of a user lists and expires
(not only the first), jobs/list pages with limit and a cursor, inputs never share an output file, a FIFO on the
drive never hangs a worker, delete_out_dir never acts on a symlink leaving the drive, and webhooks cannot be
aimed at the server's own network."""
import json
import os
import shutil
import tempfile
import time

import pytest

from conftest import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, assert_error, wait_for
from test_runner import INVOICE, b64, put_inputs, solution  # noqa: F401 (solution: the fixture)
from test_runner import wait_done as wait_status
from test_scaling import scale_stack

LEAVES = "leaves the drive (a symlink or '..' points outside its user folder)"


def wait_done(s, job, token=ADMIN_TOKEN, timeout=60):
    """The job's cur_status once it ended."""
    return json.loads(wait_status(s, job, token, timeout)["cur_status"])


def run_folder(s, token, inp, **settings):
    body = {"name": "invoice_demo", "version": "1.0.0", "input_folder": inp}
    if settings:
        body["settings"] = settings
    r = s.post("/solution/run", body, token=token)
    assert r.status_code == 200, r.text
    return r.json()["job_id"]


# --- 4. every solution/run job of a user is indexed ----------------------------------------------------------

def test_every_solution_run_job_lists_newest_first(stack, solution):
    # the user index entry of a solution/run job was skipped after the user's first job (a stale errno)
    made = []
    for i in range(3):
        inp = put_inputs(stack, "alice", "idx%d/in" % i, {"a.txt": INVOICE})
        made.append(run_folder(stack, ALICE_TOKEN, inp))
        assert wait_done(stack, made[-1], ALICE_TOKEN)["status"] == "COMPLETE"
    listed = [j["job_id"] for j in stack.get("/jobs/list", token=ALICE_TOKEN).json()["jobs"]]
    assert listed[:3] == made[::-1], (listed, made)


def test_retention_removes_every_solution_run_job(stack_factory):
    s = scale_stack(stack_factory, IBSOL_JOB_RETENTION_S="1")
    made = []
    for i in range(3):
        made.append(run_folder(s, ADMIN_TOKEN, put_inputs(s, "admin", "ret%d/in" % i, {"a.txt": INVOICE})))
    for job in made:
        wait_done(s, job)

    def gone():
        return all(s.get("/jobs/status?job_id=" + j, timeout=10).status_code == 404 for j in made)
    wait_for("all three jobs to expire", gone, timeout=20)
    users = os.path.join(s.data, "jobs", "users", "admin")
    assert not [n for n in os.listdir(users) if n.endswith(tuple(made))]
    assert not [n for n in os.listdir(os.path.join(s.data, "jobs")) if n.startswith(tuple(made))]
    for i in range(3):  # the outputs of a batch job are the user's: kept
        assert os.path.isfile(os.path.join(s.data, "drive/admin/ret%d/out/batch.ibflowresults" % i))


# --- jobs/list: limit and cursor -----------------------------------------------------------------------------

def sync_job(s, token, name="n.txt"):
    r = s.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [
        {"file_name": name, "file_content": b64(INVOICE)}]}, token=token)
    assert r.status_code == 200, r.text
    return r.json()["job_id"]


def page(s, query, token=BOB_TOKEN):
    r = s.get("/jobs/list" + query, token=token)
    assert r.status_code == 200, r.text
    body = r.json()
    return [j["job_id"] for j in body["jobs"]], body["next_cursor"]


def test_jobs_list_limit_and_cursor(stack, solution):
    made = [sync_job(stack, BOB_TOKEN) for _ in range(5)]
    newest = made[::-1]
    ids, cur = page(stack, "?limit=2")
    assert ids == newest[:2] and isinstance(cur, str) and cur
    # a job created meanwhile does not shift the next pages: they hold only jobs older than the cursor
    later = sync_job(stack, BOB_TOKEN)
    ids, cur = page(stack, "?limit=2&cursor=" + cur)
    assert ids == newest[2:4]
    ids, cur = page(stack, "?limit=2&cursor=" + cur)
    assert ids == newest[4:] and cur is None
    ids, cur = page(stack, "?limit=1")
    assert ids == [later] and cur
    ids, cur = page(stack, "")  # no limit: the default page holds them all
    assert ids == [later] + newest and cur is None


@pytest.mark.parametrize("query,msg", [
    ("?limit=0", "limit '0' must be a whole number from 1 to 1000"),
    ("?limit=1001", "limit '1001' must be a whole number from 1 to 1000"),
    ("?limit=-3", "limit '-3' must be a whole number from 1 to 1000"),
    ("?limit=ten", "limit 'ten' must be a whole number from 1 to 1000"),
    ("?limit=", "limit '' must be a whole number from 1 to 1000"),
    ("?cursor=xyz", "cursor 'xyz' is not a cursor from jobs/list's next_cursor"),
    ("?cursor=0000000000000000.not-a-job", "cursor '0000000000000000.not-a-job' is not a cursor"),
])
def test_jobs_list_bad_limit_or_cursor(stack, query, msg):
    r = stack.get("/jobs/list" + query, token=BOB_TOKEN)
    assert_error(r, 400, "bad_request", msg)


# --- 5. output names are unique in a job ---------------------------------------------------------------------

def check_own_outputs(s, records, want):
    """Every record names its own .ibdoc, as `want` says (file_name -> output base), and that file is its."""
    got = {}
    for rec in records:
        path = rec["output_file_path"]
        base = os.path.basename(path)
        assert base.endswith(".ibdoc"), path
        got.setdefault(rec["file_name"], []).append(base[:-len(".ibdoc")])
        doc = json.load(open(os.path.join(s.data, "drive", path.lstrip("/"))))
        assert doc["file_name"] == rec["file_name"] and doc["file_index"] == rec["file_index"], (path, doc)
    assert got == want
    paths = [r["output_file_path"] for r in records]
    assert len(set(paths)) == len(paths), paths


def test_folder_inputs_never_share_an_output(stack, solution):
    # a/x.txt and a__x.txt both flattened to a__x.txt; a name that looks marked is marked too; unique names
    # keep their readable name
    inp = put_inputs(stack, "admin", "names/in", {"a/x.txt": INVOICE, "a__x.txt": b"second file\n",
                                                  "solo.txt": b"solo\n", "r~5": b"tilde\n"})
    job = run_folder(stack, ADMIN_TOKEN, inp)
    assert wait_done(stack, job)["status"] == "COMPLETE"
    recs = stack.get("/jobs/results?job_id=" + job).json()["records"]
    # inputs sorted: a/x.txt (0), a__x.txt (1), r~5 (2), solo.txt (3)
    check_own_outputs(stack, recs, {"a/x.txt": ["a__x.txt~0"], "a__x.txt": ["a__x.txt~1"], "r~5": ["r~5~2"],
                                    "solo.txt": ["solo.txt"]})
    batch = json.load(open(os.path.join(stack.data, "drive/admin/names/out/batch.ibflowresults")))
    assert sorted(r["file_name"] for r in batch["results"]) == ["a/x.txt", "a__x.txt", "r~5", "solo.txt"]


def test_run_sync_inputs_never_share_an_output(stack, solution):
    long1, long2 = "p" * 200 + "1.txt", "p" * 200 + "2.txt"  # alike in the first 200 bytes, which are kept
    files = [("inv.txt", INVOICE), (".x.txt", b"dot\n"), ("_x.txt", b"underscore\n"), (long1, b"one\n"),
             (long2, b"two\n"), ("inv.txt", b"the same name again\n"), ("other.txt", b"other\n")]
    r = stack.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [
        {"file_name": n, "file_content": b64(d)} for n, d in files]})
    assert r.status_code == 200, r.text
    recs = r.json()["records"]
    assert [x["file_name"] for x in recs] == [n for n, _ in files]
    check_own_outputs(stack, recs, {"inv.txt": ["inv.txt~0", "inv.txt~5"], ".x.txt": ["_x.txt~1"],
                                    "_x.txt": ["_x.txt~2"], long1: ["p" * 200 + "~3"],
                                    long2: ["p" * 200 + "~4"], "other.txt": ["other.txt"]})


# --- 8. a FIFO on the drive ----------------------------------------------------------------------------------

def test_files_copy_of_a_fifo_is_refused_promptly(stack):
    d = os.path.join(stack.data, "drive/alice/pipes")
    os.makedirs(d, exist_ok=True)
    os.mkfifo(os.path.join(d, "fifo"))
    t0 = time.time()
    r = stack.post("/files/copy", {"src_path": "/alice/pipes/fifo", "dst_path": "/alice/pipes/copy"},
                   token=ALICE_TOKEN, timeout=10)
    assert_error(r, 400, "bad_request", "src_path: '/alice/pipes/fifo' is not a regular file")
    r = stack.post("/files/extract", {"src_path": "/alice/pipes/fifo", "dst_path": "/alice/pipes/x"},
                   token=ALICE_TOKEN, timeout=10)
    assert_error(r, 400, "bad_request", "src_path: '/alice/pipes/fifo' is not a regular file")
    assert time.time() - t0 < 5
    assert not os.path.exists(os.path.join(d, "copy")) and not os.path.exists(os.path.join(d, "x"))
    # a folder holding a FIFO copies without it
    os.makedirs(os.path.join(d, "tree"))
    open(os.path.join(d, "tree", "a.txt"), "w").write("a")
    os.mkfifo(os.path.join(d, "tree", "fifo"))
    r = stack.post("/files/copy", {"src_path": "/alice/pipes/tree", "dst_path": "/alice/pipes/tree2"},
                   token=ALICE_TOKEN, timeout=10)
    assert r.status_code == 202, r.text
    assert wait_done(stack, r.json()["job_id"], ALICE_TOKEN, timeout=10)["status"] == "COMPLETE"
    assert sorted(os.listdir(os.path.join(d, "tree2"))) == ["a.txt"]


def test_run_of_a_fifo_solution_path_is_refused_promptly(stack):
    os.makedirs(os.path.join(stack.data, "drive/alice/pipes"), exist_ok=True)
    os.mkfifo(os.path.join(stack.data, "drive/alice/pipes/sol.ibsolution"))
    put_inputs(stack, "alice", "pipes/in", {"a.txt": INVOICE})
    r = stack.post("/solution/run", {"solution_path": "/alice/pipes/sol.ibsolution", "input_folder": "/alice/pipes/in"},
                   token=ALICE_TOKEN, timeout=10)
    assert_error(r, 400, "bad_request", "solution_path: '/alice/pipes/sol.ibsolution' is not a regular file")


def test_create_with_a_fifo_manifest_is_refused_promptly(stack):
    d = os.path.join(stack.data, "drive/alice/fifo-sol")
    os.makedirs(d, exist_ok=True)
    os.mkfifo(os.path.join(d, "package.json"))
    r = stack.post("/solution/create", {"content_folder": "/alice/fifo-sol", "output_folder": "/alice/fifo-out"},
                   token=ALICE_TOKEN, timeout=10)
    assert_error(r, 400, "bad_request", "package.json cannot be read")


def test_publish_of_a_fifo_is_refused(stack):
    os.makedirs(os.path.join(stack.data, "drive/admin/pipes"), exist_ok=True)
    os.mkfifo(os.path.join(stack.data, "drive/admin/pipes/sol.ibsolution"))
    r = stack.post("/marketplace/publish", {"ibsolution_path": "/admin/pipes/sol.ibsolution"}, timeout=10)
    assert_error(r, 400, "bad_request", "ibsolution_path '/admin/pipes/sol.ibsolution' is not a regular file")


# --- 9. delete_out_dir and a symlink leaving the drive -------------------------------------------------------

def test_delete_out_dir_refuses_a_symlink_leaving_the_drive(stack, solution):
    outside = tempfile.mkdtemp(prefix="ibs-outside-", dir="/tmp")
    try:
        open(os.path.join(outside, "precious.txt"), "w").write("keep me")
        inp = put_inputs(stack, "alice", "esc/in", {"a.txt": INVOICE})
        link = os.path.join(stack.data, "drive/alice/esc/out")
        os.symlink(outside, link)
        for folder in ("/alice/esc/out", "/alice/esc/out/sub"):
            r = stack.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": inp,
                                             "settings": {"output_folder": folder, "delete_out_dir": True}},
                           token=ALICE_TOKEN)
            assert_error(r, 403, "forbidden", "settings.output_folder: '%s' %s" % (folder, LEAVES))
        assert os.path.islink(link) and os.readlink(link) == outside
        assert os.listdir(outside) == ["precious.txt"]
        assert open(os.path.join(outside, "precious.txt")).read() == "keep me"
    finally:
        shutil.rmtree(outside)


# --- 12. webhook targets ---------------------------------------------------------------------------------------

TARGET_TAIL = ("; webhooks may not reach loopback, link-local, private, multicast or reserved addresses "
               "(IBSOL_WEBHOOK_ALLOW_PRIVATE=true allows them)")


def test_webhook_to_private_addresses_refused(stack_factory):
    s = stack_factory({"IBSOL_WEBHOOK_ALLOW_PRIVATE": "false"})
    inp = put_inputs(s, "alice", "hook/in", {"a.txt": INVOICE})
    for url, addr, kind in [("http://127.0.0.1:9/done", "127.0.0.1", "a loopback address"),
                            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "a link-local address"),
                            ("http://10.0.0.1/x", "10.0.0.1", "a private address"),
                            ("http://[::1]/x", "::1", "a loopback address"),
                            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "a loopback address")]:
        r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": inp,
                                     "settings": {"webhook_config": {"url": url}}}, token=ALICE_TOKEN)
        body = assert_error(r, 400, "bad_request")
        assert body["msg"] == "settings.webhook_config.url '%s' resolves to %s, %s%s" % (url, addr, kind,
                                                                                         TARGET_TAIL)
    assert not os.path.exists(os.path.join(s.data, "drive/alice/hook/out"))  # refused before anything was made
