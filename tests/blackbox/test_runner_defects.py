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
