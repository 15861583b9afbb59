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
