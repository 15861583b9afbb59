"""Running solutions as a user does: solution/run with job ids and progress, run_sync with fields back at
once, the job calls, notifications, files/copy and files/extract, and bad input of every kind."""
import csv
import http.server
import io
import json
import os
import re
import shutil
import threading
import time

import pytest

from conftest import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, assert_error, b64, fields, install_example
from conftest import EXAMPLE_FIELDS as EXPECTED
from conftest import EXAMPLE_INVOICE as INVOICE


def wait_done(stack, job_id, token=ADMIN_TOKEN, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = stack.get("/jobs/status?job_id=" + job_id, token=token)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["state"] == "DONE":
            return body
        assert body["state"] == "PENDING"
        time.sleep(0.1)
    raise AssertionError("job %s did not end: %s" % (job_id, body))


@pytest.fixture(scope="module")
def solution(stack):
    """The example solution packaged, published and installed; also kept as an unpublished .ibsolution."""
    path = install_example(stack)
    # alice gets her own copy of the package to run unpublished
    os.makedirs(os.path.join(stack.data, "drive/alice/build"), exist_ok=True)
    shutil.copy(os.path.join(stack.data, "drive", path.lstrip("/")),
                os.path.join(stack.data, "drive/alice/build/invoice_demo-1.0.0.ibsolution"))
    return path


def put_inputs(stack, user, folder, files):
    root = os.path.join(stack.data, "drive", user, folder)
    os.makedirs(root, exist_ok=True)
    for name, data in files.items():
        p = os.path.join(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return "/%s/%s" % (user, folder)


def test_run_installed_solution(stack, solution):
    inp = put_inputs(stack, "admin", "proj/in", {"invoice-1001.txt": INVOICE, "sub/note.txt": b"hello there\n"})
    r = stack.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": inp})
    assert r.status_code == 200, r.text
    body = r.json()
    job = body["job_id"]
    assert body["status"] == "OK"
    assert body["solution"] == {"name": "invoice_demo", "version": "1.0.0"}
    assert body["data"] == {"job_id": job, "output_folder": "/admin/proj/out"}
    st = wait_done(stack, job)
    cur = json.loads(st["cur_status"])
    assert cur["status"] == "COMPLETE" and cur["index"] == 2 and cur["total"] == 2
    assert cur["curMsg"] == "Completed 2/2 files" and cur["curProgress"] == 1
    assert cur["run_summary"]["numFiles"] == 2 and cur["run_summary"]["numRecords"] == 2
    assert cur["finish_timestamp"] > 0
    assert st["results"] == [{"status": "OK", "output_folder": "/admin/proj/out"}]
    res = stack.get("/jobs/results?job_id=" + job).json()
    recs = {r["file_name"]: r for r in res["records"]}
    assert fields(recs["invoice-1001.txt"]) == EXPECTED
    assert fields(recs["sub/note.txt"]) == {"first_line": "hello there"}
    out = os.path.join(stack.data, "drive/admin/proj/out")
    batch = json.load(open(os.path.join(out, "batch.ibflowresults")))
    assert batch["job_id"] == job and len(batch["results"]) == 2
    assert any(n.startswith("s1_process_files") for n in os.listdir(out))
    for rec in res["records"]:
        assert rec["output_file_path"].startswith("/admin/proj/out/")
        assert os.path.exists(os.path.join(stack.data, "drive", rec["output_file_path"].lstrip("/")))


def test_run_unpublished_solution_with_settings(stack, solution):
    inp = put_inputs(stack, "alice", "in", {"a.txt": INVOICE})
    settings = {"output_folder": "/alice/results", "output_has_run_id": True, "tags": ["q1", "test"],
                "runtime_config": {"k": "v"}}
    r = stack.post("/api/v1/solution/run", {"solution_path": "/alice/build/invoice_demo-1.0.0.ibsolution",
                                            "input_folder": inp, "settings": settings}, token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    assert r.json()["data"]["output_folder"] == "/alice/results/" + job
    wait_done(stack, job, ALICE_TOKEN)
    assert os.path.exists(os.path.join(stack.data, "drive/alice/results", job, "batch.ibflowresults"))
    jobs = stack.get("/jobs/list", token=ALICE_TOKEN).json()["jobs"]
    assert jobs[0]["job_id"] == job and jobs[0]["tags"] == ["q1", "test"]
    assert all(j["job_id"] != job for j in stack.get("/jobs/list", token=BOB_TOKEN).json()["jobs"])


def test_delete_out_dir(stack, solution):
    inp = put_inputs(stack, "admin", "del/in", {"a.txt": INVOICE})
    stale = os.path.join(stack.data, "drive/admin/del/out/stale.txt")
    os.makedirs(os.path.dirname(stale), exist_ok=True)
    open(stale, "w").write("old")
    r = stack.post("/solution/run", {"name": "invoice_demo", "version": "latest", "input_folder": inp,
                                     "settings": {"delete_out_dir": True}})
    wait_done(stack, r.json()["job_id"])
    assert not os.path.exists(stale)


def test_run_sync(stack, solution):
    r = stack.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [
        {"file_name": "inv.txt", "file_content": b64(INVOICE)},
        {"file_name": "bad.txt", "file_content": "!!not base64!!"},
        {"file_name": "empty.txt", "file_content": ""}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "OK"
    assert body["binary_path"] == "/installed/invoice_demo/1.0.0/invoice_demo.ibflowbin"
    recs = body["records"]
    assert [x["file_name"] for x in recs] == ["inv.txt", "bad.txt", "empty.txt"]
    assert [x["file_index"] for x in recs] == [0, 1, 2]
    assert fields(recs[0]) == EXPECTED
    assert recs[0]["record_index"] == 0
    assert recs[1]["error"] == "bad.txt: file_content is not valid base64" and "results" not in recs[1]
    assert recs[2]["error"] == "empty.txt: empty file"
    st = stack.get("/jobs/status?job_id=" + body["job_id"]).json()
    assert st["state"] == "DONE"
    assert stack.get("/jobs/results?job_id=" + body["job_id"]).json()["records"] == recs


def test_run_sync_writes_each_file_once(stack, solution):
    # a one-file run_sync is recorded once, final, with its results inside: no lock, no per-file results, no
    # entry among the unfinished jobs, and no temporary left anywhere (each file is created once, none replaced)
    r = stack.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [
        {"file_name": "inv.txt", "file_content": b64(INVOICE)}]})
    assert r.status_code == 200, r.text
    body = r.json()
    job = body["job_id"]
    jobs = os.path.join(stack.data, "jobs")
    assert sorted(n for n in os.listdir(jobs) if n.startswith(job)) == [job + ".json"]
    assert job not in os.listdir(os.path.join(jobs, "active"))
    entry = [n for n in os.listdir(os.path.join(jobs, "users", "admin")) if n.endswith("." + job)]
    assert len(entry) == 1 and re.fullmatch(r"[0-9a-f]{16}\.[0-9a-f-]{36}", entry[0]), entry
    rec = json.load(open(os.path.join(jobs, job + ".json")))
    assert int(entry[0][:16], 16) == int(rec["created"] * 1e6)  # the index sorts by creation time
    assert os.stat(os.path.join(jobs, "users", "admin", entry[0])).st_ino == \
        os.stat(os.path.join(jobs, job + ".json")).st_ino  # a final record's entry is a link to it
    assert rec["status"] == "COMPLETE" and rec["index"] == 1 and rec["total"] == 1, rec
    assert rec["file_results"][0]["file_name"] == "inv.txt"
    out = os.path.join(stack.data, "drive", "admin", ".ibsol", "run_sync", job)
    found = sorted(os.path.relpath(os.path.join(d, n), out) for d, _, names in os.walk(out) for n in names)
    assert found[0] == "batch.ibflowresults" and len(found) > 2, found
    assert all(re.fullmatch(r"s\d_[a-z_]+/inv\.txt\.ibdoc", f) for f in found[1:]), found
    assert stack.get("/jobs/results?job_id=" + job).json()["records"] == body["records"]
    listed = stack.get("/jobs/list").json()["jobs"]
    assert listed[0]["job_id"] == job and listed[0]["status"] == "COMPLETE", listed[0]


def test_jobs_list_newest_first_and_bounded(stack, solution):
    # jobs/list reads the user's index, sorted by creation time, and only the records it returns: the newest 100
    made = []
    for i in range(105):
        r = stack.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [
            {"file_name": "n%d.txt" % i, "file_content": b64(INVOICE)}]}, token=BOB_TOKEN)
        assert r.status_code == 200, r.text
        made.append(r.json()["job_id"])
    listed = [j["job_id"] for j in stack.get("/jobs/list", token=BOB_TOKEN).json()["jobs"]]
    assert listed == made[::-1][:100]
    # an entry of an older version (the bare job id) still lists, at its place in time
    users = os.path.join(stack.data, "jobs", "users", "bob")
    newest = [n for n in os.listdir(users) if n.endswith("." + made[104])][0]
    os.rename(os.path.join(users, newest), os.path.join(users, made[104]))
    listed = [j["job_id"] for j in stack.get("/jobs/list", token=BOB_TOKEN).json()["jobs"]]
    assert listed[0] == made[104] and len(listed) == 100


def test_run_sync_csv_and_output_dir(stack, solution):
    r = stack.post("/solution/run_sync", {"solution_path": "/alice/build/invoice_demo-1.0.0.ibsolution",
                                          "output_dir": "/alice/sync-out", "options": {"result_format": "csv"},
                                          "files": [{"file_name": 'a "quoted", name.txt', "file_content": b64(INVOICE)}]},
                   token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "\r\n" in r.text
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["file_name", "file_index", "record_index"]
    assert rows[1][0] == 'a "quoted", name.txt'
    row = dict(zip(rows[0], rows[1]))
    assert row["invoice_no"] == "INV-1001" and float(row["total"]) == 224.98
    assert os.path.isdir(os.path.join(stack.data, "drive/alice/sync-out"))
    # a number reads in CSV as JSON shows it: the shortest text of the same value, not 224.97999999999999
    assert row["total"] == "224.98"
    r = stack.post("/solution/run_sync", {"solution_path": "/alice/build/invoice_demo-1.0.0.ibsolution",
                                          "files": [{"file_name": "a.txt", "file_content": b64(INVOICE)}]},
                   token=ALICE_TOKEN)
    assert fields(r.json()["records"][0])["total"] == 224.98
    # and the JSON text itself says 224.98, as CSV does (jansson alone writes 224.97999999999999)
    assert '"value":224.98,' in r.text and "224.97999" not in r.text


def test_finish_timestamp_is_the_same_in_every_answer(stack, solution):
    r = stack.post("/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0",
                                          "files": [{"file_name": "inv.txt", "file_content": b64(INVOICE)}]})
    assert r.status_code == 200, r.text
    body = r.json()
    ts = body["finish_timestamp"]
    assert abs(ts - time.time()) < 60
    job = body["job_id"]
    cur = json.loads(stack.get("/jobs/status?job_id=" + job).json()["cur_status"])
    assert cur["finish_timestamp"] == ts
    assert stack.get("/jobs/results?job_id=" + job).json()["finish_timestamp"] == ts
    listed = [j for j in stack.get("/jobs/list").json()["jobs"] if j["job_id"] == job]
    assert listed[0]["finish_timestamp"] == ts
    # events print numbers with 15 significant digits: still the same number
    ev = stack.get("/jobs/events?job_id=" + job, timeout=20).text
    data = [json.loads(l[5:]) for l in ev.splitlines() if l.startswith("data:")]
    assert data and data[0]["finish_timestamp"] == ts, ev


@pytest.mark.parametrize("body,status,code,msg", [
    ({"input_folder": "/admin/proj/in"}, 400, "bad_request", "give either 'name' and 'version'"),
    ({"input_folder": "/admin/proj/in", "name": "invoice_demo", "version": "1.0.0", "solution_path": "/admin/x"},
     400, "bad_request", "not both"),
    ({"input_folder": "/admin/proj/in", "name": "invoice_demo"}, 400, "bad_request", "'version' is required with 'name'"),
    ({"input_folder": "/admin/proj/in", "name": "invoice_demo", "version": "9.9.9"}, 404, "not_found",
     "solution 'invoice_demo' version '9.9.9' is not installed"),
    ({"input_folder": "/admin/proj/in", "solution_path": "/admin/example/package.json"}, 400, "bad_request",
     "solution_path: '/admin/example/package.json' is not a valid .ibsolution"),
    ({"input_folder": "/admin/nope", "name": "invoice_demo", "version": "1.0.0"}, 404, "not_found",
     "input_folder: '/admin/nope' does not exist"),
    ({"input_folder": "/admin/proj/in", "name": "invoice_demo", "version": "1.0.0", "settings": {"output_has_run_id": "yes"}},
     400, "bad_request", "settings.output_has_run_id must be true or false"),
    ({"input_folder": "/admin/proj/in", "name": "invoice_demo", "version": "1.0.0", "settings": {"tags": "x"}},
     400, "bad_request", "settings.tags must be a list of strings"),
    ({"input_folder": "/admin/proj/in", "name": "invoice_demo", "version": "1.0.0", "settings": {"runtime_config": {"a": 1}}},
     400, "bad_request", "settings.runtime_config must be an object of strings"),
    ({"input_folder": "/admin/proj/in", "name": "invoice_demo", "version": "1.0.0", "settings": []},
     400, "bad_request", "'settings' must be an object"),
])
def test_run_bad_input(stack, solution, body, status, code, msg):
    put_inputs(stack, "admin", "proj/in", {"invoice-1001.txt": INVOICE})
    assert_error(stack.post("/solution/run", body), status, code, msg)


def test_run_input_folder_empty_or_not_yours(stack, solution):
    os.makedirs(os.path.join(stack.data, "drive/admin/empty"), exist_ok=True)
    r = stack.post("/solution/run", {"input_folder": "/admin/empty", "name": "invoice_demo", "version": "1.0.0"})
    assert_error(r, 400, "bad_request", "input_folder '/admin/empty' has no files")
    r = stack.post("/solution/run", {"input_folder": "/admin/proj/in", "name": "invoice_demo", "version": "1.0.0"},
                   token=ALICE_TOKEN)
    assert_error(r, 403, "forbidden", "input_folder: '/admin/proj/in' belongs to another user")


@pytest.mark.parametrize("files,msg", [
    ("x", "'files' must be a list"),
    ([], "'files' must not be empty"),
    ([{"file_content": "aGk="}], "files[0].file_name is required"),
    ([{"file_name": "a/b.txt", "file_content": "aGk="}], "files[0].file_name 'a/b.txt' must be a plain file name"),
    ([{"file_name": "..", "file_content": "aGk="}], "files[0].file_name '..' must be a plain file name"),
    ([{"file_name": "a.txt"}], "files[0].file_content is required"),
    (["a.txt"], "files[0] must be an object"),
])
def test_run_sync_bad_files(stack, solution, files, msg):
    r = stack.post("/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": files})
    assert_error(r, 400, "bad_request", msg)


def test_run_sync_bad_format(stack, solution):
    r = stack.post("/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "options": {"result_format": "xml"},
                                          "files": [{"file_name": "a.txt", "file_content": b64(INVOICE)}]})
    assert_error(r, 400, "bad_request", "options.result_format must be \"json\" or \"csv\", not \"xml\"")


def test_job_ids(stack, solution):
    assert_error(stack.get("/jobs/status?job_id=nope"), 400, "bad_request", "job_id 'nope' is not a job id")
    assert_error(stack.get("/jobs/status?job_id=5eb7df69-7506-41b3-bd3a-eb69d8b8a36d"), 404, "not_found",
                 "job_id '5eb7df69-7506-41b3-bd3a-eb69d8b8a36d' is not a known job")
    assert_error(stack.get("/jobs/status"), 400, "bad_request", "'job_id' is required")
    inp = put_inputs(stack, "alice", "mine", {"a.txt": INVOICE})
    job = stack.post("/solution/run", {"solution_path": "/alice/build/invoice_demo-1.0.0.ibsolution",
                                       "input_folder": inp}, token=ALICE_TOKEN).json()["job_id"]
    assert stack.get("/jobs/status?job_id=%s&type=flow" % job, token=ALICE_TOKEN).status_code == 200
    for path in ("/jobs/status", "/jobs/results"):
        assert_error(stack.get("%s?job_id=%s" % (path, job), token=BOB_TOKEN), 403, "forbidden",
                     "job '%s' belongs to another user" % job)
    assert_error(stack.post("/jobs/cancel", {"job_id": job}, token=BOB_TOKEN), 403, "forbidden", "another user")
    wait_done(stack, job, ALICE_TOKEN)


class Hook(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_and_email(stack, solution):
    srv = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        inp = put_inputs(stack, "admin", "hook/in", {"a.txt": INVOICE})
        settings = {"webhook_config": {"url": "http://127.0.0.1:%d/done" % srv.server_port,
                                       "headers": {"X-Secret": "s3"}},
                    "notification_emails": "ops@example.com, lead@example.com"}
        job = stack.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": inp,
                                           "settings": settings}).json()["job_id"]
        wait_done(stack, job)
        deadline = time.time() + 20
        while not Hook.received and time.time() < deadline:
            time.sleep(0.05)
        headers, body = Hook.received[-1]
        assert headers["X-Secret"] == "s3"
        assert body == {"status": "OK", "job_id": job, "input_folder": "/admin/hook/in",
                        "output_folder": "/admin/hook/out"}
        outbox = os.path.join(stack.data, "outbox")
        while time.time() < deadline and len([f for f in os.listdir(outbox) if job in f]) < 2:
            time.sleep(0.05)
        mails = sorted(f for f in os.listdir(outbox) if job in f)
        assert len(mails) == 2
        text = open(os.path.join(outbox, mails[0]), "rb").read()
        assert b"To: ops@example.com\r\n" in text and job.encode() in text
    finally:
        srv.shutdown()


def test_webhook_refused_job_still_done(stack, solution):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    inp = put_inputs(stack, "admin", "hook2/in", {"a.txt": INVOICE})
    job = stack.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": inp,
                                       "settings": {"webhook_config": {"url": "http://127.0.0.1:%d/x" % port}}}).json()["job_id"]
    st = wait_done(stack, job)
    assert json.loads(st["cur_status"])["status"] == "COMPLETE"
    rec_path = os.path.join(stack.data, "jobs", job + ".json")
    deadline = time.time() + 120
    while time.time() < deadline:
        rec = json.load(open(rec_path))
        if "notifications" in rec:
            break
        time.sleep(0.2)
    hook = rec["notifications"]["webhook"]
    assert hook["delivered"] is False and hook["attempts"] == 8 and hook["error"]
    assert "webhook not delivered" in stack.log("runner")


def test_bad_webhook_settings(stack, solution):
    r = stack.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": "/admin/proj/in",
                                     "settings": {"webhook_config": {"url": "ftp://x"}}})
    assert_error(r, 400, "bad_request", "settings.webhook_config.url")


def test_files_copy_and_extract(stack, solution):
    put_inputs(stack, "alice", "src", {"a.txt": b"A", "d/b.txt": b"B"})
    r = stack.post("/files/copy", {"src_path": "/alice/src", "dst_path": "/alice/copied"}, token=ALICE_TOKEN)
    assert r.status_code == 202, r.text
    st = wait_done(stack, r.json()["job_id"], ALICE_TOKEN)
    assert st["results"][0]["status"] == "OK"
    assert open(os.path.join(stack.data, "drive/alice/copied/d/b.txt")).read() == "B"
    # copied again: the destination is replaced whole (test_cicd_toolkit.py says why)
    put_inputs(stack, "alice", "src", {"a.txt": b"A2"})
    r = stack.post("/files/copy", {"src_path": "/alice/src", "dst_path": "/alice/copied"}, token=ALICE_TOKEN)
    assert wait_done(stack, r.json()["job_id"], ALICE_TOKEN)["results"][0]["status"] == "OK"
    assert open(os.path.join(stack.data, "drive/alice/copied/a.txt")).read() == "A2"
    assert_error(stack.post("/files/copy", {"src_path": "/alice/none", "dst_path": "/alice/c2"}, token=ALICE_TOKEN),
                 404, "not_found", "src_path: '/alice/none' does not exist")
    assert_error(stack.post("/files/copy", {"src_path": "/bob/x", "dst_path": "/alice/c3"}, token=ALICE_TOKEN),
                 403, "forbidden", "src_path: '/bob/x' belongs to another user")
    r = stack.post("/api/v1/files/extract", {"src_path": "/alice/build/invoice_demo-1.0.0.ibsolution",
                                             "dst_path": "/alice/unpacked"}, token=ALICE_TOKEN)
    assert r.status_code == 202, r.text
    wait_done(stack, r.json()["job_id"], ALICE_TOKEN)
    assert os.path.exists(os.path.join(stack.data, "drive/alice/unpacked/invoice_demo.ibflowbin"))
    # an archive with an escaping entry: the job fails, nothing is left behind
    import zipfile
    evil = os.path.join(stack.data, "drive/alice/evil.zip")
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escape.txt", "x")
    r = stack.post("/files/extract", {"src_path": "/alice/evil.zip", "dst_path": "/alice/evil"}, token=ALICE_TOKEN)
    st = wait_done(stack, r.json()["job_id"], ALICE_TOKEN)
    assert st["results"][0]["status"] == "ERROR" and "escapes its folder" in st["results"][0]["msg"]
    assert not os.path.exists(os.path.join(stack.data, "drive/alice/evil"))
    assert not os.path.exists(os.path.join(stack.data, "drive/escape.txt"))
