"""What one solution may take from a runner: a refiner that grows its values exponentially, or runs for ever, fails
its record with a message instead of taking the runner's memory, disk or time; run_sync answers within its
timeout; a job stops at its output limit; job records stay small enough for jobs/status; an answer too large
to pass between daemons is a clear 413, not a time-out."""
import base64
import json
import os
import random
import tempfile
import time

import pytest

from conftest import Stack, assert_error, wait_for

# A 3.3 KB text of words, like the 3.7 KB file.
random.seed(7)
WORDS = ["invoice", "total", "amount", "date", "vendor", "ACME", "Ltd", "paid", "due", "item"]
TEXT = ("\n".join(" ".join(random.choice(WORDS) for _ in range(10)) for _ in range(60)) + "\n").encode()

# The refiner: concats over regex_all, each field twice the one before (g20 alone would be ~3.5 GB).
GROW = [{"name": "first", "formula": "regex(INPUT_COL, '\\w+')"},
        {"name": "g0", "formula": "concat(regex_all(INPUT_COL, '\\w+'), regex_all(INPUT_COL, '\\w+'))"}] + \
       [{"name": "g%d" % i, "formula": "concat(g%d, g%d)" % (i - 1, i - 1)} for i in range(1, 21)] + \
       [{"name": "wide%d" % i, "formula": "concat(g9, g9, g9, g9, g9, g9, g9, g9)"} for i in range(8)] + \
       [{"name": "last", "formula": "concat('still ', 'here')"}]

# Fields that each walk 33,000 matches (~5 MB of values at a time): a minute of formulas or more.
SLOW = [{"name": "slow%d" % i,
         "formula": "len(regex_all(concat(%s), '.'))" % ", ".join(["INPUT_COL"] * 10)} for i in range(400)]

# Small results, one record per file: for the job output limit.
SMALL = [{"name": "first", "formula": "regex(INPUT_COL, '\\w+')"}]

# Results of ~600 KB, under every limit: for the job record's size.
MEDIUM = [{"name": "big%d" % i, "formula": "concat(INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, "
                                          "INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, '%d')" % i}
          for i in range(18)]

MiB = 1 << 20
LIMITS = {
    "IBSOL_FORMULA_MAX_BYTES": str(8 * MiB),
    "IBSOL_MAX_RECORD_OUTPUT": str(2 * MiB),
    "IBSOL_SYNC_TIMEOUT_MS": "3000",
    "IBSOL_POOL": "1",
    # freed memory goes back at once, so the high-water mark measures what the runner held
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:quarantine_size_mb=8",
}


def b64(data):
    return base64.b64encode(data).decode()


def make_solution(stack, name, fields):
    """A content folder with one refiner of `fields`, packaged: returns its .ibsolution path."""
    root = os.path.join(stack.data, "drive/admin/src", name)
    os.makedirs(os.path.join(root, "refiners"), exist_ok=True)
    with open(os.path.join(root, "package.json"), "w") as f:
        json.dump({"name": name, "version": "1.0.0", "short_description": "limits test",
                   "long_description": "a solution for the runner's limits", "authors": ["tests"],
                   "solution_type": "ibflowbin", "industry": "Test"}, f)
    with open(os.path.join(root, "flow.json"), "w") as f:
        json.dump({"steps": [{"type": "process_files"},
                             {"type": "apply_refiner", "programs": {"*": "refiners/r.ibrefiner"}}]}, f)
    with open(os.path.join(root, "refiners/r.ibrefiner"), "w") as f:
        json.dump({"fields": fields}, f)
    r = stack.post("/solution/create", {"content_folder": "/admin/src/" + name, "output_folder": "/admin/build"})
    assert r.status_code == 200, r.text
    return r.json()["ibsolution_path"]


def status(stack, job):
    r = stack.get("/jobs/status?job_id=" + job)
    assert r.status_code == 200, r.text
    body = r.json()
    return body, json.loads(body["cur_status"])


def wait_final(stack, job, timeout=60):
    return wait_for("job %s to end" % job, lambda: (lambda b: b if b[0]["state"] == "DONE" else None)(
        status(stack, job)), timeout=timeout)


def runner_hwm_mb(stack):
    with open("/proc/%d/status" % stack.procs["runner"].pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(path) for n in names)


@pytest.fixture(scope="module")
def limited():
    s = Stack(tempfile.mkdtemp(prefix="ibs-", dir="/tmp"), LIMITS)
    s.start_all()
    s.paths = {name: make_solution(s, name, fields)
               for name, fields in (("grow", GROW), ("slow", SLOW), ("small", SMALL), ("medium", MEDIUM))}
    yield s
    problems = s.shutdown()
    assert not problems, "\n".join(problems)


def test_growing_refiner_fails_its_record(limited):
    s = limited
    before = runner_hwm_mb(s)
    inp = os.path.join(s.data, "drive/admin/grow-in")
    os.makedirs(inp, exist_ok=True)
    with open(os.path.join(inp, "words.txt"), "wb") as f:
        f.write(TEXT)
    r = s.post("/solution/run", {"solution_path": s.paths["grow"], "input_folder": "/admin/grow-in",
                                 "settings": {"output_folder": "/admin/grow-out"}})
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    body, cur = wait_final(s, job)
    # the job tells it: the file failed, with the limit's message
    assert cur["status"] == "COMPLETE", cur
    assert cur["run_summary"]["numRuntimeErrors"] > 0, cur
    assert cur["curMsg"].startswith("Completed 1/1 files; 1 failed, the first: words.txt: formula budget exceeded: "
                                    "field 'g"), cur
    assert cur["curMsg"].endswith("built more than 8 MiB"), cur
    rec = s.get("/jobs/results?job_id=" + job).json()["records"][0]
    res = {x["key"]: x for x in rec["results"]}
    assert rec["error"].startswith("formula budget exceeded: field '") and rec["error"].endswith(
        "' built more than 8 MiB"), rec["error"]
    failed = [k for k, x in res.items() if x.get("error", "").startswith("formula budget exceeded")]
    assert failed and all(res[k]["value"] == "ERROR" for k in failed)
    # the values that fit are there, the field after the failures too, and no field is larger than the record limit
    assert res["first"]["value"] and res["g0"]["value"].count("\n") > 100
    assert res["last"]["value"] == "still here"
    assert "uses field" in res["g20"]["error"]
    results_size = len(json.dumps(rec["results"]))
    assert results_size < 2 * MiB + 64 * 1024, results_size
    # bounded disk: the .ibdoc files, the batch file and the job's per-file result repeat the record, and none holds
    # more than the record's output limit of results
    out = folder_bytes(os.path.join(s.data, "drive/admin/grow-out"))
    assert out < 4 * 2 * MiB + 256 * 1024, out
    assert folder_bytes(os.path.join(s.data, "jobs")) < 2 * 2 * MiB + 256 * 1024
    # bounded memory: 8 MiB of values, 2 MiB of results (and the copies they go through)
    after = runner_hwm_mb(s)
    assert after - before < 200, (before, after)
    # a record that ran into a limit is an answer like any other: run_sync gives it back (200)
    r = s.post("/solution/run_sync", {"solution_path": s.paths["grow"],
                                      "files": [{"file_name": "w.txt", "file_content": b64(TEXT)}]})
    assert r.status_code == 200, r.text
    assert r.json()["records"][0]["error"] == rec["error"]


def test_run_sync_stops_a_slow_formula_at_its_timeout(limited):
    s = limited
    t0 = time.time()
    r = s.post("/solution/run_sync", {"solution_path": s.paths["slow"],
                                      "files": [{"file_name": "w.txt", "file_content": b64(TEXT)}]})
    took = time.time() - t0
    body = assert_error(r, 504, "timeout", "run_sync did not finish within 3000 ms; job ")
    assert 2.9 < took < 8, took
    job = body["msg"].split("job ")[1].split()[0]
    st, cur = status(s, job)
    assert st["state"] == "DONE" and cur["status"] == "FAILED", cur
    first_ts = cur["finish_timestamp"]
    # the formula was stopped at the deadline too: the runner's only worker is free again at once
    t0 = time.time()
    r = s.post("/solution/run_sync", {"solution_path": s.paths["small"],
                                      "files": [{"file_name": "w.txt", "file_content": b64(TEXT)}]})
    assert r.status_code == 200, r.text
    assert time.time() - t0 < 2.5
    # the timed-out job ended with a message on its record, and its end did not move
    rec = wait_for("the timed-out file's result", lambda: (lambda x: x if x.get("records") else None)(
        s.get("/jobs/results?job_id=" + job).json()), timeout=10)
    results = rec["records"][0]["results"]
    stopped = [i for i, x in enumerate(results) if "error" in x][0]
    assert all(int(x["value"]) > 30000 for x in results[:stopped])  # the fields done by then have values
    assert results[stopped]["error"] == \
        "formula budget exceeded: field 'slow%d' was still running at the run's deadline" % stopped, results
    assert rec["records"][0]["error"] == results[stopped]["error"]
    assert all(x["error"] == "formula budget exceeded: field '%s' was not evaluated: it came after the run's "
               "deadline" % x["key"] for x in results[stopped + 1:])
    st, cur = status(s, job)
    assert cur["status"] == "FAILED" and cur["curMsg"] == "Timed out after 1/1 files (limit 3000 ms)", cur
    assert st["results"] == [{"status": "ERROR", "msg": cur["curMsg"],
                              "output_folder": "/admin/.ibsol/run_sync/" + job}]
    assert cur["finish_timestamp"] == first_ts
    assert rec["finish_timestamp"] == first_ts


def test_slow_formula_fails_its_record_in_a_batch_job(stack_factory):
    s = stack_factory(dict(LIMITS, IBSOL_FORMULA_MAX_MS="300"))
    path = make_solution(s, "slow", SLOW)
    inp = os.path.join(s.data, "drive/admin/slow-in")
    os.makedirs(inp, exist_ok=True)
    for name in ("a.txt", "b.txt"):
        with open(os.path.join(inp, name), "wb") as f:
            f.write(TEXT)
    t0 = time.time()
    r = s.post("/solution/run", {"solution_path": path, "input_folder": "/admin/slow-in"})
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    _, cur = wait_final(s, job, timeout=30)
    assert time.time() - t0 < 15
    assert cur["curMsg"].startswith("Completed 2/2 files; 2 failed, the first: a.txt: formula budget exceeded: "
                                    "field 'slow"), cur
    assert cur["curMsg"].endswith("' ran longer than 300 ms"), cur
    recs = s.get("/jobs/results?job_id=" + job).json()["records"]
    for rec in recs:
        assert rec["error"].endswith("ran longer than 300 ms"), rec["error"]
        assert rec["results"][-1]["error"] == "formula budget exceeded: field 'slow399' was not evaluated: the " \
                                              "record's formulas ran longer than 300 ms"


def test_job_stops_at_its_output_limit(stack_factory):
    s = stack_factory(dict(LIMITS, IBSOL_MAX_JOB_OUTPUT="4096"))
    path = make_solution(s, "small", SMALL)
    inp = os.path.join(s.data, "drive/admin/many")
    os.makedirs(inp, exist_ok=True)
    for i in range(40):
        with open(os.path.join(inp, "f%02d.txt" % i), "wb") as f:
            f.write(b"word%d and more\n" % i)
    r = s.post("/solution/run", {"solution_path": path, "input_folder": "/admin/many"})
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    st, cur = wait_final(s, job)
    assert cur["status"] == "FAILED", cur
    done = cur["index"]
    assert 0 < done < 40, cur
    msg = "Stopped after %d/40 files: the job's results passed the limit of 4 KiB (IBSOL_MAX_JOB_OUTPUT)" % done
    assert cur["curMsg"] == msg and st["results"][0] == {"status": "ERROR", "msg": msg,
                                                         "output_folder": "/admin/out"}, (cur, st)
    recs = s.get("/jobs/results?job_id=" + job).json()["records"]
    assert len(recs) == done
    # run_sync: the same limit is a 413 naming it
    files = [{"file_name": "f%02d.txt" % i, "file_content": b64(b"word%d and more\n" % i)} for i in range(40)]
    r = s.post("/solution/run_sync", {"solution_path": path, "files": files})
    assert_error(r, 413, "too_large", "files: the job's results passed the limit of 4 KiB (IBSOL_MAX_JOB_OUTPUT); job ")


def test_large_results_stay_out_of_the_job_record(limited):
    s = limited
    r = s.post("/solution/run_sync", {"solution_path": s.paths["medium"],
                                      "files": [{"file_name": "w.txt", "file_content": b64(TEXT)}]})
    assert r.status_code == 200, r.text
    body = r.json()
    job = body["job_id"]
    assert not any("error" in x for x in body["records"][0]["results"])
    assert len(json.dumps(body["records"])) > 500 * 1024
    # the record points to its results, which are kept per file as a batch job's
    jobs = os.path.join(s.data, "jobs")
    assert os.path.getsize(os.path.join(jobs, job + ".json")) < 16 * 1024
    rec = json.load(open(os.path.join(jobs, job + ".json")))
    assert "file_results" not in rec and rec["results_in"] == "per_file"
    assert os.path.exists(os.path.join(jobs, job + ".d", "0.json"))
    st, cur = status(s, job)
    assert cur["status"] == "COMPLETE"
    res = s.get("/jobs/results?job_id=" + job).json()
    assert res["records"] == body["records"]
    assert res["finish_timestamp"] == body["finish_timestamp"] == cur["finish_timestamp"]


def test_answer_larger_than_max_msg_is_413(stack_factory):
    s = stack_factory({"IBSOL_MAX_MSG": str(256 * 1024), "IBSOL_REQUEST_TIMEOUT_MS": "20000"})
    path = make_solution(s, "medium", MEDIUM)
    t0 = time.time()
    r = s.post("/solution/run_sync", {"solution_path": path,
                                      "files": [{"file_name": "w.txt", "file_content": b64(TEXT)}]})
    assert_error(r, 413, "too_large", "the answer is ", "bytes, more than IBSOL_MAX_MSG (262144 bytes)")
    assert time.time() - t0 < 10
