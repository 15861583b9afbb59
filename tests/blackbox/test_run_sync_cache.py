"""run_sync's write_to_cache (the original product's option): false skips the output folder the caller will not
read (a .ibdoc per flow step, batch.ibflowresults), the reply and the job's record stay whole."""
import os

import pytest

from conftest import EXAMPLE, EXAMPLE_INVOICE, assert_error, b64, fields, install_example

with open(os.path.join(EXAMPLE, "demo_data/invoice-1002.pdf"), "rb") as _f:
    PDF = _f.read()


@pytest.fixture(scope="module")
def solution(stack):
    install_example(stack)


def run_sync(stack, **extra):
    body = {"name": "invoice_demo", "version": "1.0.0", "files": [
        {"file_name": "inv.txt", "file_content": b64(EXAMPLE_INVOICE)},
        {"file_name": "inv.pdf", "file_content": b64(PDF)}]}
    body.update(extra)
    return stack.post("/api/v1/solution/run_sync", body)


def sync_root(stack):
    return os.path.join(stack.data, "drive", "admin", ".ibsol", "run_sync")


@pytest.mark.parametrize("extra", [{"write_to_cache": "false"}, {"write_to_cache": False},
                                   {"options": {"write_to_cache": False}},
                                   {"write_to_cache": "False", "options": {"write_to_cache": "false"}}],
                         ids=["string", "boolean", "in-options", "both"])
def test_write_to_cache_false_writes_no_output_folder(stack, solution, extra):
    full = run_sync(stack)
    assert full.status_code == 200, full.text
    r = run_sync(stack, **extra)
    assert r.status_code == 200, r.text
    body = r.json()
    job = body["job_id"]
    # the same records as with outputs, but no file to point at
    assert [fields(x) for x in body["records"]] == [fields(x) for x in full.json()["records"]]
    assert fields(body["records"][0])["invoice_no"] == "INV-1001"
    assert fields(body["records"][1])["invoice_no"] == "INV-1002"
    assert [x["output_file_path"] for x in body["records"]] == [None, None]
    assert not os.path.exists(os.path.join(sync_root(stack), job))
    # the job itself is recorded and answers as any other
    st = stack.get("/jobs/status?job_id=" + job).json()
    assert st["state"] == "DONE" and st["results"] == [{"status": "OK"}], st
    assert stack.get("/jobs/results?job_id=" + job).json()["records"] == body["records"]
    assert stack.get("/jobs/list").json()["jobs"][0]["job_id"] == job


def test_write_to_cache_true_keeps_the_output_folder(stack, solution):
    r = run_sync(stack, write_to_cache="true")
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    out = os.path.join(sync_root(stack), job)
    assert os.path.exists(os.path.join(out, "batch.ibflowresults"))
    for rec in r.json()["records"]:
        assert rec["output_file_path"].startswith("/admin/.ibsol/run_sync/%s/" % job)
        assert os.path.exists(os.path.join(stack.data, "drive", rec["output_file_path"].lstrip("/")))


def test_write_to_cache_false_with_output_dir_writes_there(stack, solution):
    # a folder the caller names is one it means to read
    r = run_sync(stack, write_to_cache=False, output_dir="/admin/sync-named")
    assert r.status_code == 200, r.text
    assert os.path.exists(os.path.join(stack.data, "drive/admin/sync-named/batch.ibflowresults"))
    assert r.json()["records"][0]["output_file_path"].startswith("/admin/sync-named/")


@pytest.mark.parametrize("extra,msg", [
    ({"write_to_cache": "maybe"}, "write_to_cache must be true or false"),
    ({"write_to_cache": 0}, "write_to_cache must be true or false"),
    ({"options": {"write_to_cache": "no"}}, "options.write_to_cache must be true or false"),
    ({"write_to_cache": "true", "options": {"write_to_cache": False}},
     "write_to_cache and options.write_to_cache disagree"),
])
def test_write_to_cache_bad_values(stack, solution, extra, msg):
    before = set(os.listdir(os.path.join(stack.data, "jobs")))
    assert_error(run_sync(stack, **extra), 400, "bad_request", msg)
    assert set(os.listdir(os.path.join(stack.data, "jobs"))) == before  # refused before any job exists
