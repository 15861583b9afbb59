"""Runners as an operator scales them: several runner instances on one data root share the work, any of them
answers for any job, a runner killed mid-job (kill -9) has its job resumed (or failed, naming it) by another,
restarts of the gateway or a runner lose nothing, and the bounds hold: cancel, run_sync's timeout and memory,
the per-runner job limit, and the gateway's runner and job metrics.

The workload is real: copies of a 15-page PDF (about half a second each under the sanitizers), so a job of a
few dozen files is slow enough to kill or cancel mid-way."""
import json
import os
import re
import shutil
import signal
import threading
import time

from conftest import EXAMPLE_INVOICE, assert_error, b64, install_example, metrics_value, wait_for
from gen_docs import columns_pdf

PDF = columns_pdf(15)  # generated: three columns of prose on each page, like a register's
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --- helpers ------------------------------------------------------------------------------------------------

def start_runner(s, key, pool=1, **env):
    e = {"IBSOL_INSTANCE": key, "IBSOL_POOL": str(pool)}
    e.update(env)
    return s.start("runner", env=e, key=key)


def scale_stack(stack_factory, runners=("r1",), pool=1, runner_env=None, **env):
    """A stack with the given runner instances (keys = instance names), the example solution installed."""
    env.setdefault("IBSOL_HEARTBEAT_MS", "500")
    s = stack_factory(env, start=False)
    for name in ("gateway", "packager", "marketplace"):
        s.start(name)
    for key in runners:
        start_runner(s, key, pool, **(runner_env or {}))
    s.wait_healthy()
    install_example(s)
    s.pdf = os.path.join(s.root, "src.pdf")  # one copy on the stack's file system, hard-linked into inputs
    shutil.copy(PDF, s.pdf)
    return s


def pdf_folder(s, name, n):
    """/admin/<name>/in holding n copies of the PDF (results go to /admin/<name>/out)."""
    d = os.path.join(s.data, "drive/admin", name, "in")
    os.makedirs(d)
    for i in range(n):
        os.link(s.pdf, os.path.join(d, "f%03d.pdf" % i))
    return "/admin/%s/in" % name


def run(s, folder):
    r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": folder})
    assert r.status_code == 200, r.text
    return r.json()["job_id"]


def record(s, job):
    """The job record as the runners keep it (<data>/jobs/<id>.json)."""
    try:
        with open(os.path.join(s.data, "jobs", job + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):  # not written yet
        return {}


def status(s, job):
    r = s.get("/jobs/status?job_id=" + job, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    body["cur"] = json.loads(body["cur_status"])
    return body


def wait_done(s, job, timeout=60):
    return wait_for("job %s to end" % job, lambda: (lambda b: b if b["state"] == "DONE" else None)(status(s, job)),
                    timeout=timeout)


def wait_index(s, job, at_least, timeout=30):
    return wait_for("job %s to pass %d files" % (job, at_least),
                    lambda: (lambda b: b if b["cur"].get("index", 0) >= at_least else None)(status(s, job)),
                    timeout=timeout, interval=0.05)


def file_results(s, job):
    """{index: (inode, mtime_ns)} of the job's saved per-file results."""
    d = os.path.join(s.data, "jobs", job + ".d")
    out = {}
    for name in os.listdir(d):
        m = re.fullmatch(r"(\d+)\.json", name)
        if m:
            st = os.stat(os.path.join(d, name))
            out[int(m.group(1))] = (st.st_ino, st.st_mtime_ns)
    return out


def assert_every_file_once(s, job, n, ext="pdf"):
    """Each of the n input files has exactly one result, in jobs/results and in batch.ibflowresults."""
    r = s.get("/jobs/results?job_id=" + job)
    assert r.status_code == 200, r.text
    recs = r.json()["records"]
    names = sorted(x["file_name"] for x in recs)
    assert names == ["f%03d.%s" % (i, ext) for i in range(n)], names
    assert sorted(x["file_index"] for x in recs) == list(range(n))
    assert all("error" not in x for x in recs), [x for x in recs if "error" in x][:2]
    out = os.path.join(s.data, "drive", record(s, job)["output_folder"].lstrip("/"))
    batch = json.load(open(os.path.join(out, "batch.ibflowresults")))
    assert batch["job_id"] == job
    assert sorted(x["file_name"] for x in batch["results"]) == names


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


# --- 1. capacity ---------------------------------------------------------------------------------------------

def test_second_runner_adds_capacity(stack_factory):
    s = scale_stack(stack_factory, runners=("r1", "r2"))
    jobs = [run(s, pdf_folder(s, "cap%d" % i, 4)) for i in range(4)]
    for job in jobs:
        assert json.loads(status(s, job)["cur_status"])["total"] == 4
    for job in jobs:
        st = wait_done(s, job)
        assert st["cur"]["status"] == "COMPLETE" and st["cur"]["index"] == 4, st
    recs = {job: record(s, job) for job in jobs}
    owners = {job: rec["runner"] for job, rec in recs.items()}
    # requests are spread over the attached runners: both own jobs, and each ran its own
    assert set(owners.values()) == {"r1", "r2"}, owners
    for job, owner in owners.items():
        assert "job %s: 4 files" % job in s.log(owner)
        other = "r2" if owner == "r1" else "r1"
        assert "job %s: 4 files" % job not in s.log(other)
    # and they ran at the same time: some r1 job overlapped some r2 job
    overlap = [(a, b) for a in jobs for b in jobs if owners[a] == "r1" and owners[b] == "r2"
               and recs[a]["started"] < recs[b]["finish_timestamp"] and recs[b]["started"] < recs[a]["finish_timestamp"]]
    assert overlap, {j: (owners[j], recs[j]["started"], recs[j]["finish_timestamp"]) for j in jobs}


def test_pool_of_two_ends_every_job_once(stack_factory):
    # two workers on one runner share each job's files: every job ends once, with its final count, whichever
    # worker takes its last file (and the sanitizers watch the hand-over)
    s = scale_stack(stack_factory, runners=("r1",), pool=2)
    jobs = []
    for i in range(8):
        d = os.path.join(s.data, "drive/admin/small%d/in" % i)
        os.makedirs(d)
        for k in range(12):
            with open(os.path.join(d, "f%03d.txt" % k), "w") as f:
                f.write("note %d of job %d\n" % (k, i))
        jobs.append(run(s, "/admin/small%d/in" % i))
    for job in jobs:
        st = wait_done(s, job)
        assert st["cur"]["status"] == "COMPLETE" and st["cur"]["index"] == 12, st
        assert st["cur"]["curMsg"] == "Completed 12/12 files"
        assert_every_file_once(s, job, 12, ext="txt")
    for job in jobs:  # the record on disk is the final one, not a later progress save
        assert record(s, job)["index"] == 12 and record(s, job)["status"] == "COMPLETE"


# --- 2. a runner killed mid-job ----------------------------------------------------------------------------

def test_killed_runner_job_is_resumed_without_redoing_files(stack_factory):
    n = 24
    s = scale_stack(stack_factory, runners=("r1", "r2"))
    wait_for("both runners to attach", lambda: metrics_value(s, "ibsol_runners_attached") == 2, timeout=15)
    job = run(s, pdf_folder(s, "kill", n))
    wait_index(s, job, 3)
    owner = record(s, job)["runner"]
    survivor = "r2" if owner == "r1" else "r1"
    before = file_results(s, job)
    assert len(before) >= 3
    assert s.stop(owner, signal.SIGKILL) == -signal.SIGKILL
    killed_at = time.time()
    rec = wait_for("%s to resume the job" % survivor,
                   lambda: (lambda r: r if r.get("runner") == survivor and r.get("resumed") == 1 else None)(
                       record(s, job)), timeout=30)
    assert time.time() - killed_at < 30
    assert "runner '%s' was lost; resuming its job here" % owner in s.log(survivor)
    assert rec["index"] >= len(before), rec  # it starts from the files already saved
    st = wait_done(s, job, timeout=60)
    assert st["cur"]["status"] == "COMPLETE", st
    assert st["cur"]["index"] == n and st["cur"]["run_summary"]["numFiles"] == n
    assert st["results"][0]["status"] == "OK"
    assert_every_file_once(s, job, n)
    # the files finished before the kill were kept, not redone: their saved results were never rewritten
    after = file_results(s, job)
    assert sorted(after) == list(range(n))
    redone = [i for i in before if after[i] != before[i]]
    assert not redone, "files %s were processed again after the resume" % redone
    # the gateway notices the lost runner (its heartbeats stop)
    wait_for("the gateway to count one runner", lambda: metrics_value(s, "ibsol_runners_attached") == 1, timeout=15)


def test_killed_runner_job_fails_naming_it_when_resume_is_off(stack_factory):
    s = scale_stack(stack_factory, runners=("r1", "r2"), runner_env={"IBSOL_RESUME": "false"})
    job = run(s, pdf_folder(s, "lost", 20))
    wait_index(s, job, 2)
    owner = record(s, job)["runner"]
    done_before = set(file_results(s, job))
    s.stop(owner, signal.SIGKILL)
    st = wait_done(s, job, timeout=30)
    assert st["cur"]["status"] == "FAILED", st
    msg = st["results"][0]["msg"]
    assert st["results"][0]["status"] == "ERROR"
    assert "runner '%s' was lost while running this job" % owner in msg, msg
    # what was finished is still there
    recs = s.get("/jobs/results?job_id=" + job).json()["records"]
    assert {x["file_index"] for x in recs} >= done_before


def test_killed_runner_run_sync_fails_fast_and_can_be_retried(stack_factory):
    # a run_sync cannot be resumed (its files were in the dead runner's memory): the caller is told at once
    # (503, not a hang until the request timeout), its job ends FAILED naming the lost runner, and the same call
    # again is answered by the other runner
    s = scale_stack(stack_factory, runners=("r1", "r2"))
    pdf = b64(open(PDF, "rb").read())
    call = {"name": "invoice_demo", "version": "1.0.0",
            "files": [{"file_name": "p%d.pdf" % i, "file_content": pdf} for i in range(6)]}
    result = {}

    def post():
        try:
            result["r"] = s.post("/api/v1/solution/run_sync", call, timeout=60)
        except Exception as e:  # reported below
            result["e"] = e
    t = threading.Thread(target=post)
    t.start()
    jobs_dir = os.path.join(s.data, "jobs")

    def running_sync():
        for name in os.listdir(jobs_dir):
            if name.endswith(".json"):
                rec = record(s, name[:-5])
                if rec.get("sync") and rec.get("status") == "RUNNING" and rec.get("index", 0) >= 1:
                    return rec
    first = wait_for("the run_sync job to run", running_sync, timeout=30, interval=0.05)
    s.stop(first["runner"], signal.SIGKILL)
    killed_at = time.time()
    t.join(30)
    assert not t.is_alive() and "e" not in result, result
    assert time.time() - killed_at < 5
    assert_error(result["r"], 503, "unavailable", "runner")
    st = wait_done(s, first["job_id"], timeout=30)
    assert st["cur"]["status"] == "FAILED"
    assert "runner '%s' was lost while running this job" % first["runner"] in st["results"][0]["msg"], st
    r = s.post("/api/v1/solution/run_sync", call, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["records"]) == 6


def test_orphan_waits_for_room_on_a_full_runner(stack_factory):
    # each runner holds one job: the survivor is full when the other dies, and must take the orphan once it has
    # room, not fail it
    s = scale_stack(stack_factory, runners=("r1", "r2"), IBSOL_MAX_JOBS="1")
    jobs = []
    for i in range(2):
        folder = pdf_folder(s, "full%d" % i, 6 if i == 0 else 3)

        def submit():
            r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": folder})
            return r.json()["job_id"] if r.status_code == 200 else None
        jobs.append(wait_for("room for job %d" % i, submit, timeout=10))
    victim, other = jobs
    wait_index(s, victim, 1)
    owner, survivor = record(s, victim)["runner"], record(s, other)["runner"]
    assert owner != survivor  # one job each
    s.stop(owner, signal.SIGKILL)
    st = wait_done(s, other, timeout=30)
    assert st["cur"]["status"] == "COMPLETE", st
    st = wait_done(s, victim, timeout=30)
    assert st["cur"]["status"] == "COMPLETE", st
    assert record(s, victim)["runner"] == survivor
    assert_every_file_once(s, victim, 6)


# --- 3. restarts -----------------------------------------------------------------------------------------------

def test_gateway_restart_keeps_done_jobs_and_inflight_jobs_finish(stack_factory):
    s = scale_stack(stack_factory, runners=("r1",))
    done = run(s, pdf_folder(s, "early", 2))
    st_done = wait_done(s, done)
    res_done = s.get("/jobs/results?job_id=" + done).json()
    job = run(s, pdf_folder(s, "during", 10))
    wait_index(s, job, 1)
    assert s.stop("gateway") == 0
    s.start("gateway")
    s.wait_healthy()
    again = status(s, done)
    assert again["state"] == "DONE" and again["cur_status"] == st_done["cur_status"]
    assert again["results"] == st_done["results"]
    assert s.get("/jobs/results?job_id=" + done).json() == res_done
    st = wait_done(s, job)
    assert st["cur"]["status"] == "COMPLETE" and st["cur"]["index"] == 10, st
    assert_every_file_once(s, job, 10)


def test_runner_restart_resumes_its_jobs(stack_factory):
    s = scale_stack(stack_factory, runners=("r1",))
    running = run(s, pdf_folder(s, "a", 8))
    queued = run(s, pdf_folder(s, "b", 3))
    wait_index(s, running, 1)
    assert record(s, queued)["status"] == "QUEUED"
    assert s.stop("r1") == 0  # SIGTERM: finishes its file in flight, keeps the records as they are
    before = file_results(s, running)
    start_runner(s, "r1")
    for job, n in ((running, 8), (queued, 3)):
        st = wait_done(s, job, timeout=40)
        assert st["cur"]["status"] == "COMPLETE" and st["cur"]["index"] == n, st
        assert_every_file_once(s, job, n)
        assert record(s, job)["resumed"] == 1
    after = file_results(s, running)
    assert not [i for i in before if after[i] != before[i]]


# --- 4. any runner answers -------------------------------------------------------------------------------------

def test_status_agrees_while_two_runners_share_the_job(stack_factory):
    s = scale_stack(stack_factory, runners=("r1", "r2"))
    job = run(s, pdf_folder(s, "st", 6))
    # while it runs: every answer is PENDING and progress never goes back
    last = -1
    for _ in range(20):
        st = status(s, job)
        if st["state"] == "DONE":
            break
        assert st["cur"]["status"] in ("QUEUED", "RUNNING") and st["cur"]["total"] == 6
        assert st["cur"]["index"] >= last, (st, last)
        last = st["cur"]["index"]
    wait_done(s, job)
    answers = [s.get("/jobs/status?job_id=" + job).json() for _ in range(20)]
    assert all(a == answers[0] for a in answers), answers
    cur = json.loads(answers[0]["cur_status"])
    assert answers[0]["state"] == "DONE" and cur["status"] == "COMPLETE" and cur["index"] == 6
    assert answers[0]["results"] == [{"status": "OK", "output_folder": "/admin/st/out"}]
    # the gateway read every answer from the record the two runners keep: neither runner was asked
    for key in ("r1", "r2"):
        assert "op=jobs.status" not in s.log(key), key


# --- 5. cancel -------------------------------------------------------------------------------------------------

def test_progress_events_are_spaced_and_the_end_always_comes(stack_factory):
    """A runner publishes a job's progress at most every 50 ms, besides its changes of state (an event per file of
    a fast batch woke the runner's and the gateway's threads several times each): a follower sees the count
    rise, never fall, and always gets the end with every file counted."""
    n = 200  # text invoices: a few milliseconds each, so an event per file would far pass the bound below
    s = scale_stack(stack_factory, runners=("r1",))
    d = os.path.join(s.data, "drive/admin/spaced/in")
    os.makedirs(d)
    for i in range(n):
        with open(os.path.join(d, "inv%03d.txt" % i), "wb") as f:
            f.write(EXAMPLE_INVOICE)
    folder = "/admin/spaced/in"
    t0 = time.monotonic()
    job = run(s, folder)
    events = []
    with s.get("/jobs/events?job_id=" + job, stream=True, timeout=60) as stream:
        assert stream.status_code == 200, stream.text
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1].get("state") == "DONE":
                    break
    took = time.monotonic() - t0
    assert events[-1]["status"] == "COMPLETE" and events[-1]["index"] == n, events[-1]
    indexes = [e.get("index", 0) for e in events]
    assert indexes == sorted(indexes), indexes
    # the stream's first status, the job's QUEUED and RUNNING, one progress event per 50 ms at most, the end
    assert len(events) <= 5 + took / 0.05, (len(events), took, indexes)


def test_cancel_stops_at_the_next_file(stack_factory):
    n = 60
    s = scale_stack(stack_factory, runners=("r1",))
    job = run(s, pdf_folder(s, "cancel", n))
    events = []
    with s.get("/jobs/events?job_id=" + job, stream=True, timeout=30) as stream:
        assert stream.status_code == 200, stream.text
        cancelled = False
        for line in stream.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            ev = json.loads(line[5:])
            events.append(ev)
            if not cancelled and ev.get("index", 0) >= 1:
                r = s.post("/jobs/cancel", {"job_id": job})
                assert r.status_code == 200 and r.json()["cancel_requested"] is True, r.text
                cancelled = True
            if ev.get("state") == "DONE":
                break
    assert cancelled, events
    assert events[-1]["status"] == "CANCELLED", events[-1]
    indexes = [e.get("index", 0) for e in events]
    assert indexes == sorted(indexes), indexes
    st = wait_done(s, job, timeout=10)
    cur = st["cur"]
    assert cur["status"] == "CANCELLED" and cur["total"] == n and 1 <= cur["index"] < n, cur
    assert cur["curMsg"] == "Cancelled after %d/%d files" % (cur["index"], n)
    assert st["results"][0]["status"] == "ERROR"
    r = s.get("/jobs/results?job_id=" + job)
    assert r.status_code == 200, r.text
    assert len(r.json()["records"]) == cur["index"]
    # cancelling a finished job changes nothing
    r = s.post("/jobs/cancel", {"job_id": job})
    assert r.status_code == 200 and r.json()["cancel_requested"] is False


def test_cancel_a_queued_job_ends_it_before_its_turn(stack_factory):
    # one worker, busy with a long job: a cancelled job waiting behind it ends CANCELLED at once, not when its
    # turn comes
    s = scale_stack(stack_factory, runners=("r1",))
    long_job = run(s, pdf_folder(s, "busy", 30))
    queued = run(s, pdf_folder(s, "waiting", 3))
    wait_index(s, long_job, 1)
    assert record(s, queued)["status"] == "QUEUED"
    assert s.post("/jobs/cancel", {"job_id": queued}).json()["cancel_requested"] is True
    st = wait_done(s, queued, timeout=10)
    assert st["cur"]["status"] == "CANCELLED" and st["cur"]["index"] == 0, st
    assert status(s, long_job)["state"] == "PENDING"  # it came before its turn
    s.post("/jobs/cancel", {"job_id": long_job})
    assert wait_done(s, long_job, timeout=10)["cur"]["status"] == "CANCELLED"


# --- 6 & 7. run_sync -------------------------------------------------------------------------------------------

def test_run_sync_timeout_is_504_and_the_job_ends(stack_factory):
    s = scale_stack(stack_factory, runners=("r1",), IBSOL_SYNC_TIMEOUT_MS="300")
    pdf = b64(open(PDF, "rb").read())
    t0 = time.time()
    r = s.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [
        {"file_name": "p%d.pdf" % i, "file_content": pdf} for i in range(4)]})
    assert time.time() - t0 < 10
    body = assert_error(r, 504, "timeout", "300 ms")
    m = UUID.search(body["msg"])
    assert m, body
    job = m.group(0)
    st = wait_done(s, job, timeout=5)
    assert st["cur"]["status"] == "FAILED", st
    assert st["results"][0]["msg"].startswith("Timed out after"), st
    assert st["cur"]["index"] < 4


def test_run_sync_memory_is_bounded(stack_factory):
    # quarantine off: freed memory is given back as without the sanitizer, so VmHWM measures what is held
    s = scale_stack(stack_factory, runners=("r1",),
                    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:quarantine_size_mb=0")
    # ~3 MB of plain text (~4 MB of base64) per file, in long words: cheap for the engine, whose documents and
    # .ibdoc files grow with the number of words (a 3 MB file of 30 000 words makes a 17 MB .ibdoc per step and
    # ~150 MB more peak memory), so what is measured is the request's own memory
    text = (b"x" * 9999 + b"\n") * 300
    files = [{"file_name": "t%d.txt" % i, "file_content": b64(text)} for i in range(10)]
    body = json.dumps({"name": "invoice_demo", "version": "1.0.0", "files": files}).encode()
    del files
    size = len(body)
    assert 38 << 20 < size < 64 << 20
    gw, rn = s.procs["gateway"].pid, s.procs["r1"].pid
    gw0, rn0 = vm_hwm_kb(gw), vm_hwm_kb(rn)
    r = s.post("/api/v1/solution/run_sync", data=body, headers={"Content-Type": "application/json"}, timeout=120)
    assert r.status_code == 200, r.text[:500]
    recs = r.json()["records"]
    assert len(recs) == 10 and all("error" not in x for x in recs), recs[0]
    gw1, rn1 = vm_hwm_kb(gw), vm_hwm_kb(rn)
    figures = "body %.1f MB; gateway VmHWM %.1f -> %.1f MB (+%.1f); runner VmHWM %.1f -> %.1f MB (+%.1f)" % (
        size / 1e6, gw0 / 1e3, gw1 / 1e3, (gw1 - gw0) / 1e3, rn0 / 1e3, rn1 / 1e3, (rn1 - rn0) / 1e3)
    print(figures)
    with open(os.path.join(s.root, "memory.txt"), "w") as f:
        f.write(figures + "\n")
    assert (gw1 - gw0) * 1024 < 4 * size, figures
    assert (rn1 - rn0) * 1024 < 4 * size, figures


# --- 8. the job limit --------------------------------------------------------------------------------------------

def test_job_limit_refuses_then_accepted_jobs_end(stack_factory):
    s = scale_stack(stack_factory, runners=("r1",), IBSOL_MAX_JOBS="2")
    folders = [pdf_folder(s, "lim%d" % i, 3) for i in range(4)]
    replies = [s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": f})
               for f in folders]
    accepted = [r.json()["job_id"] for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code != 200]
    assert len(accepted) == 2 and len(refused) == 2, [(r.status_code, r.text) for r in replies]
    for r in refused:
        assert_error(r, 503, "unavailable", "limit of 2 unfinished jobs")
    for job in accepted:
        st = wait_done(s, job)
        assert st["cur"]["status"] == "COMPLETE", st
    # room again once they ended
    job = run(s, folders[3])
    assert wait_done(s, job)["cur"]["status"] == "COMPLETE"


# --- retention ------------------------------------------------------------------------------------------------

def test_retention_removes_ended_jobs_and_run_sync_default_outputs(stack_factory):
    # IBSOL_JOB_RETENTION_S: jobs that ended longer ago are removed with run_sync's default output folders, and
    # old notification emails; output folders a user named stay, and a job still running is never touched
    s = scale_stack(stack_factory, runners=("r1",), IBSOL_JOB_RETENTION_S="2")
    r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder":
                                 pdf_folder(s, "retlong", 2000), "settings": {"notification_emails": "ops@example.com"}})
    assert r.status_code == 200, r.text
    running = r.json()["job_id"]
    pdf = b64(open(PDF, "rb").read())

    def sync(extra):
        r = s.post("/api/v1/solution/run_sync", dict({"name": "invoice_demo", "version": "1.0.0", "files": [
            {"file_name": "r.pdf", "file_content": pdf}]}, **extra))
        assert r.status_code == 200, r.text
        return r.json()["job_id"]
    drive = os.path.join(s.data, "drive", "admin")
    default_out = sync({})
    # looked at at once: on a loaded machine the next call alone may take longer than the retention
    assert os.path.isdir(os.path.join(drive, ".ibsol", "run_sync", default_out))
    named_out = sync({"output_dir": "/admin/keep/out"})

    def gone(job):
        return s.get("/jobs/status?job_id=" + job, timeout=10).status_code == 404
    wait_for("the run_sync jobs to expire", lambda: gone(default_out) and gone(named_out), timeout=20)
    assert not os.path.exists(os.path.join(drive, ".ibsol", "run_sync", default_out))
    assert os.listdir(os.path.join(drive, "keep", "out"))  # named by the caller: kept
    assert not [n for n in os.listdir(os.path.join(s.data, "jobs")) if n.startswith((default_out, named_out))]
    assert not [n for n in os.listdir(os.path.join(s.data, "jobs", "users", "admin"))
                if n.endswith((default_out, named_out))]
    assert status(s, running)["state"] == "PENDING"  # older than 2 s, but not ended
    assert s.get("/jobs/list").json()["jobs"][0]["job_id"] == running
    s.post("/jobs/cancel", {"job_id": running})
    assert wait_done(s, running, timeout=30)["cur"]["status"] == "CANCELLED"
    outbox = os.path.join(s.data, "outbox")
    wait_for("its notification email", lambda: os.listdir(outbox), timeout=20)
    wait_for("the cancelled job to expire", lambda: gone(running), timeout=20)
    assert os.path.isdir(os.path.join(drive, "retlong", "out"))  # a batch job's outputs are the user's
    wait_for("the email to expire too", lambda: not os.listdir(outbox), timeout=20)
    assert "retention: removed" in s.log("r1")


# --- 9. metrics ----------------------------------------------------------------------------------------------------

def test_job_limit_is_pooled_over_runners(stack_factory):
    # a runner at its limit leaves no trace of the request and says so; the gateway sends it again, to the other
    # runner, so capacity adds up: with a limit of one job per runner and two runners, two jobs run at once; a
    # third is refused only when both are full, and a run_sync then too
    s = scale_stack(stack_factory, runners=("r1", "r2"), IBSOL_MAX_JOBS="1")
    wait_for("two runners attached", lambda: metrics_value(s, "ibsol_runners_attached") == 2, timeout=15)
    time.sleep(0.5)  # both request sockets attached too, not only the heartbeats
    # the first two run far longer than this test needs them to (they are cancelled at the end)
    folders = [pdf_folder(s, "pool%d" % i, 2000 if i < 2 else 6) for i in range(3)]
    first = run(s, folders[0])
    wait_index(s, first, 1)
    r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": folders[1]})
    assert r.status_code == 200, r.text
    second = r.json()["job_id"]
    assert record(s, first)["runner"] != record(s, second)["runner"]
    r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": folders[2]})
    assert_error(r, 503, "unavailable", "limit of 1 unfinished jobs")
    r = s.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [
        {"file_name": "a.txt", "file_content": "aGVsbG8="}]})
    assert_error(r, 503, "unavailable", "limit of 1 unfinished jobs")
    records = {n for n in os.listdir(os.path.join(s.data, "jobs")) if n.endswith(".json")}
    assert records == {first + ".json", second + ".json"}  # no job recorded for the refused calls
    assert not os.path.exists(os.path.join(s.data, "drive/admin/pool2/out"))  # nor its output folder made
    for job in (first, second):
        s.post("/jobs/cancel", {"job_id": job})
    for job in (first, second):
        assert wait_done(s, job, timeout=30)["cur"]["status"] == "CANCELLED"


def test_metrics_count_runners_and_jobs(stack_factory):
    # the gauges of unfinished jobs are summed from the runners' heartbeats (they hold the jobs), so a restarted
    # gateway shows a job that was already running; ended jobs are counted from the final events and the replies
    # of run_sync calls
    s = scale_stack(stack_factory, runners=("r1", "r2"))
    wait_for("two runners attached", lambda: metrics_value(s, "ibsol_runners_attached") == 2, timeout=15)
    long_job = run(s, pdf_folder(s, "mlong", 2000))  # runs well past the restart below; cancelled after it
    wait_index(s, long_job, 1)
    wait_for("the running job counted", lambda: metrics_value(s, "ibsol_jobs", '{state="RUNNING"}') == 1)
    assert s.stop("gateway") == 0
    s.start("gateway")
    s.wait_healthy()
    wait_for("the running job counted again after the restart",
             lambda: metrics_value(s, "ibsol_jobs", '{state="RUNNING"}') == 1, timeout=10)
    # Both runners' event sockets have dialed the new gateway (their heartbeats come through them): a final event
    # published before a runner's redial would be lost to the counts below (PUB/SUB keeps nothing).
    wait_for("both runners heard again", lambda: metrics_value(s, "ibsol_runners_attached") == 2, timeout=15)
    assert status(s, long_job)["state"] == "PENDING"
    s.post("/jobs/cancel", {"job_id": long_job})
    jobs = [run(s, pdf_folder(s, "m%d" % i, 2)) for i in range(3)]
    for job in jobs:
        assert wait_done(s, job, timeout=90)["cur"]["status"] == "COMPLETE"
    assert wait_done(s, long_job, timeout=30)["cur"]["status"] == "CANCELLED"
    # run_sync calls are jobs too: a one-file call publishes no event (its end comes in its reply, which the
    # gateway counts), a three-file one is recorded after its first file and ends with an event; each counts once
    for n in (1, 3):
        r = s.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [
            {"file_name": "s%d.txt" % i, "file_content": "aGVsbG8="} for i in range(n)]})
        assert r.status_code == 200, r.text
        assert "$job_ended" not in r.json()  # the gateway's, not the caller's
    wait_for("every end counted and nothing left running",
             lambda: metrics_value(s, "ibsol_jobs_ended_total", '{status="COMPLETE"}') == 5 and
             metrics_value(s, "ibsol_jobs_ended_total", '{status="CANCELLED"}') == 1 and
             metrics_value(s, "ibsol_jobs", '{state="RUNNING"}') == 0 and
             metrics_value(s, "ibsol_jobs", '{state="QUEUED"}') == 0, timeout=10)
    assert metrics_value(s, "ibsol_jobs_ended_total", '{status="FAILED"}') == 0


def test_one_big_job_uses_every_runner(stack_factory):
    """A runner with idle workers takes files of another runner's batch job (claiming each one), so a single
    large job uses every runner; its owner still counts, reports and ends it, every file exactly once."""
    n = 24
    s = scale_stack(stack_factory, runners=("r1", "r2"))
    wait_for("both runners to attach", lambda: metrics_value(s, "ibsol_runners_attached") == 2, timeout=15)
    job = run(s, pdf_folder(s, "big", n))
    shared = os.path.join(s.data, "jobs", "shared")
    wait_for("the job to be offered to idle runners", lambda: job in os.listdir(shared), timeout=30, interval=0.02)
    st = wait_done(s, job, timeout=90)
    assert st["cur"]["status"] == "COMPLETE" and st["cur"]["index"] == n, st
    owner = record(s, job)["runner"]
    helper = "r2" if owner == "r1" else "r1"
    log = s.log(helper)
    assert "helping with this job (owned by '%s')" % owner in log
    m = re.search(r"rid=%s helped with job: (\d+) of its files done here" % job, log)
    assert m and int(m.group(1)) > 0, log[-2000:]
    assert_every_file_once(s, job, n)
    # each file's claim became its result (one file per input, none left to remove), and the job is gone from
    # the jobs idle runners look at
    assert sorted(os.listdir(os.path.join(s.data, "jobs", job + ".d"))) == sorted(
        ["inputs.json"] + ["%d.json" % i for i in range(n)])
    assert job not in os.listdir(os.path.join(s.data, "jobs", "shared"))


def test_helpers_stop_when_the_job_is_cancelled(stack_factory):
    """A cancelled job's files have no results, and its cancel marker goes when its owner ends it: the helper must
    still stop at its next file, not work through the rest of the job while its own work waits."""
    s = scale_stack(stack_factory, runners=("r1", "r2"))
    wait_for("both runners to attach", lambda: metrics_value(s, "ibsol_runners_attached") == 2, timeout=15)
    job = run(s, pdf_folder(s, "cancelbig", 2000))
    owner = wait_for("the job to run", lambda: record(s, job).get("runner"), timeout=30)
    helper = "r2" if owner == "r1" else "r1"
    wait_for("the other runner to help", lambda: "helping with this job" in s.log(helper), timeout=30)
    s.post("/jobs/cancel", {"job_id": job})
    assert wait_done(s, job, timeout=30)["cur"]["status"] == "CANCELLED"
    wait_for("the helper to stop", lambda: re.search(r"rid=%s helped with job" % job, s.log(helper)), timeout=15)
    later = [run(s, pdf_folder(s, "after%d" % i, 2)) for i in range(4)]
    for j in later:
        assert wait_done(s, j, timeout=30)["cur"]["status"] == "COMPLETE"


def test_helper_killed_mid_file_its_file_is_taken_back(stack_factory):
    """A helper that dies holding a claim: the owner sees the claim is free and does that file itself."""
    n = 16
    s = scale_stack(stack_factory, runners=("r1", "r2"))
    wait_for("both runners to attach", lambda: metrics_value(s, "ibsol_runners_attached") == 2, timeout=15)
    job = run(s, pdf_folder(s, "helperkill", n))
    owner = wait_for("the job to start", lambda: record(s, job).get("runner") if record(s, job).get("status") == "RUNNING" else None)
    helper = "r2" if owner == "r1" else "r1"
    wait_for("%s to help" % helper, lambda: "helping with this job" in s.log(helper), timeout=30)
    assert s.stop(helper, signal.SIGKILL) == -signal.SIGKILL
    st = wait_done(s, job, timeout=90)
    assert st["cur"]["status"] == "COMPLETE" and st["cur"]["index"] == n, st
    assert record(s, job)["runner"] == owner  # never orphaned: its owner was alive throughout
    assert_every_file_once(s, job, n)
