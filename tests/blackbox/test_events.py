"""Progress events as a user meets them: GET jobs/events as Server-Sent Events, and the runner and job gauges of
/metrics. The real runner's jobs are not needed: the tests write job records as a runner does (the gateway reads
a stream's first status from them), and tests/fake_runner publishes heartbeats and, when a trigger file appears, a
job's scripted events, as a runner does."""
import json
import os
import socket
import time

import pytest

from conftest import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, assert_error, metrics_value, wait_for

FAKE = "tests/fake_runner"  # below IBSOL_BIN, so Stack.start finds it

# Job ids (the records' file names) by the names the tests use
J_RUN, J_DONE, J_BOB = ("00000000-0000-4000-8000-00000000000%d" % k for k in (1, 2, 3))
G_QUEUED, G_RUNNING, G_FAILED = ("00000000-0000-4000-8000-00000000001%d" % k for k in (1, 2, 3))

JOBS = {
    # alice's running job; its script starts with an event older than its status (the stream must drop it)
    J_RUN: {"record": {"user": "alice", "status": "RUNNING", "index": 1, "total": 3,
                       "curMsg": "Completed 1/3 files", "curProgress": 0.33},
            "script": [
                {"job_id": J_RUN, "user": "alice", "state": "PENDING", "status": "QUEUED", "index": 0, "total": 3},
                {"job_id": J_RUN, "user": "alice", "state": "PENDING", "status": "RUNNING", "index": 2,
                 "total": 3, "curMsg": "Completed 2/3 files", "curProgress": 0.67},
                {"job_id": J_RUN, "user": "alice", "state": "DONE", "status": "COMPLETE", "index": 3,
                 "total": 3, "curMsg": "Completed 3/3 files", "curProgress": 1.0, "finish_timestamp": 1700000000,
                 "run_summary": {"numFiles": 3, "numRecords": 3, "numRuntimeErrors": 0}},
            ]},
    J_DONE: {"record": {"user": "alice", "status": "COMPLETE", "index": 2, "total": 2,
                        "curMsg": "Completed 2/2 files", "output_folder": "/alice/out"}},
    J_BOB: {"record": {"user": "bob", "status": "QUEUED", "index": 0, "total": 1}},
    # for the gauges: one stays queued, one stays running, one fails
    G_QUEUED: {"record": {"user": "admin", "status": "QUEUED"},
               "script": [{"job_id": G_QUEUED, "state": "PENDING", "status": "QUEUED", "index": 0, "total": 1}]},
    G_RUNNING: {"record": {"user": "admin", "status": "QUEUED"},
                "script": [{"job_id": G_RUNNING, "state": "PENDING", "status": "QUEUED", "index": 0, "total": 2},
                           {"job_id": G_RUNNING, "state": "PENDING", "status": "RUNNING", "index": 1,
                            "total": 2}]},
    G_FAILED: {"record": {"user": "admin", "status": "QUEUED"},
               "script": [{"job_id": G_FAILED, "state": "PENDING", "status": "RUNNING", "index": 0, "total": 1},
                          {"job_id": G_FAILED, "state": "DONE", "status": "FAILED", "index": 1, "total": 1,
                           "curMsg": "boom"}]},
}


def start_events_stack(stack_factory, runner=True, **env):
    s = stack_factory(env, start=False)
    with open(os.path.join(s.root, "jobs.json"), "w") as f:
        json.dump(JOBS, f)
    # the gateway answers a stream's first status from the job's record, as a runner writes it
    os.makedirs(os.path.join(s.data, "jobs"), exist_ok=True)
    for job_id, job in JOBS.items():
        with open(os.path.join(s.data, "jobs", job_id + ".json"), "w") as f:
            json.dump(dict(job["record"], job_id=job_id), f)
    s.trigger_dir = os.path.join(s.root, "trigger")
    os.makedirs(s.trigger_dir)
    os.makedirs(os.path.join(s.root, "tests"), exist_ok=True)  # the fake's log goes to <root>/tests/fake_runner.log
    s.start("gateway")
    if runner:
        s.start(FAKE, env={"IBSOL_FAKE_JOBS": os.path.join(s.root, "jobs.json"),
                           "IBSOL_FAKE_TRIGGER_DIR": s.trigger_dir, "IBSOL_FAKE_EVENT_GAP_MS": "20"})
        wait_for("the fake runner to attach", lambda: metrics_value(s, "ibsol_runners_attached") == 1)
    else:
        wait_for("the gateway", lambda: _up(s))
    return s


def _up(s):
    try:
        return s.get("/metrics", timeout=5).status_code == 200  # not healthz: it waits on every daemon down
    except Exception:
        return False


def metrics_text(s):
    try:
        r = s.get("/metrics", timeout=5)
    except Exception:
        return ""
    assert r.status_code == 200, r.text
    return r.text


def trigger(s, job_id):
    open(os.path.join(s.trigger_dir, job_id), "w").close()


class SSE:
    """A raw HTTP/1.1 client for one event stream: headers, then the chunked body parsed into events."""

    def __init__(self, s, job_id, token=ALICE_TOKEN, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", s.port), timeout=timeout)
        self.sock.sendall(("GET /api/v1/jobs/events?job_id=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                           "Accept: text/event-stream\r\n\r\n" % (job_id, token)).encode())
        self.buf = b""
        self.body = b""
        self.ended = False  # the zero-length chunk arrived
        head = self._until(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if l)}
        if self.status != 200:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._recv()
            self.error = json.loads(self.buf[:n])

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _until(self, sep):
        while sep not in self.buf:
            self._recv()
        out, self.buf = self.buf.split(sep, 1)
        return out

    def _chunk(self):
        size = int(self._until(b"\r\n"), 16)
        while len(self.buf) < size + 2:
            self._recv()
        data, self.buf = self.buf[:size], self.buf[size + 2:]
        if size == 0:
            self.ended = True
        return data

    def next(self):
        """The next event as (name, data dict), ("comment", text), or None at the end of the stream."""
        while True:
            if b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                text = block.decode()
                if text.startswith(":"):
                    return ("comment", text[1:].strip())
                fields = dict(l.split(": ", 1) for l in text.split("\n"))
                return (fields["event"], json.loads(fields["data"]))
            if self.ended:
                assert self.body == b"", self.body
                return None
            self.body += self._chunk()

    def events(self):
        """Every event up to the end, keep-alive comments left out."""
        out = []
        while True:
            e = self.next()
            if e is None:
                return out
            if e[0] != "comment":
                out.append(e)

    def finished(self):
        """The body ended (chunked encoding's last chunk) and the server asked the client to hang up: civetweb keeps
        an HTTP/1.1 connection for the next request, so the client closes, as RFC 9112 says it must."""
        return self.ended and self.buf == b"" and self.headers.get("connection") == "close"

    def close(self):
        self.sock.close()


def test_metrics_show_the_runner_and_job_gauges(stack_factory):
    s = start_events_stack(stack_factory)
    text = metrics_text(s)
    assert "# TYPE ibsol_runners_attached gauge" in text
    assert "# TYPE ibsol_jobs gauge" in text and "# TYPE ibsol_jobs_ended_total counter" in text
    assert metrics_value(s, "ibsol_runner_busy", '{instance="fake-1"}') == 1
    assert metrics_value(s, "ibsol_runner_queued", '{instance="fake-1"}') == 3
    assert metrics_value(s, "ibsol_jobs", '{state="QUEUED"}') == 0
    assert metrics_value(s, "ibsol_jobs_ended_total", '{status="FAILED"}') == 0
    body = s.get("/healthz", token=None).json()
    assert body["runners"] == 1  # the other daemons are not started here: healthz itself is 503

    for j in (G_QUEUED, G_RUNNING, G_FAILED):
        trigger(s, j)
    wait_for("the gauges", lambda: (metrics_value(s, "ibsol_jobs", '{state="QUEUED"}') == 1 and
                                    metrics_value(s, "ibsol_jobs", '{state="RUNNING"}') == 1 and
                                    metrics_value(s, "ibsol_jobs_ended_total", '{status="FAILED"}') == 1))
    assert metrics_value(s, "ibsol_jobs_ended_total", '{status="COMPLETE"}') == 0
    # the HTTP metrics are still there, before the event ones
    assert text.index("ibsol_http_requests_total") < text.index("ibsol_runners_attached")

    # the runner stops: it is no longer attached once its heartbeats are 6 s old
    s.stop(FAKE)
    wait_for("the runner to detach", lambda: metrics_value(s, "ibsol_runners_attached") == 0, timeout=15, interval=0.25)
    assert metrics_value(s, "ibsol_runner_busy", '{instance="fake-1"}') is None


def test_stream_status_then_progress_then_end(stack_factory):
    s = start_events_stack(stack_factory)
    sse = SSE(s, J_RUN)
    try:
        assert sse.status == 200
        assert sse.headers["content-type"] == "text/event-stream"
        assert sse.headers["cache-control"] == "no-store"
        assert "content-length" not in sse.headers
        name, first = sse.next()
        assert name == "status"
        assert first["job_id"] == J_RUN and first["state"] == "PENDING"
        assert first["status"] == "RUNNING" and first["index"] == 1 and first["total"] == 3
        assert first["curMsg"] == "Completed 1/3 files" and first["curProgress"] == 0.33
        trigger(s, J_RUN)  # the stream is registered: the script's events must all reach it
        rest = sse.events()
        # the QUEUED event (older than the status the stream started from) is dropped
        assert [n for n, _ in rest] == ["progress", "end"], rest
        assert rest[0][1]["index"] == 2 and rest[0][1]["curMsg"] == "Completed 2/3 files"
        end = rest[1][1]
        assert end["status"] == "COMPLETE" and end["state"] == "DONE" and end["index"] == 3
        assert end["run_summary"] == {"numFiles": 3, "numRecords": 3, "numRuntimeErrors": 0}
        assert sse.finished()
    finally:
        sse.close()
    wait_for("the end to be counted", lambda: metrics_value(s, "ibsol_jobs_ended_total", '{status="COMPLETE"}') == 1)


def test_finished_job_ends_with_end_like_a_live_one(stack_factory):
    s = start_events_stack(stack_factory)
    sse = SSE(s, J_DONE)
    try:
        assert sse.status == 200
        events = sse.events()
        # every stream starts with "status" and ends with "end": here both at once, with the same data
        assert [n for n, _ in events] == ["status", "end"], events
        assert events[0][1] == events[1][1]
        data = events[1][1]
        assert data["status"] == "COMPLETE" and data["state"] == "DONE"
        assert data["results"] == [{"status": "OK", "output_folder": "/alice/out"}]
        assert sse.finished()
    finally:
        sse.close()
    # an admin may watch any job
    sse = SSE(s, J_DONE, token=ADMIN_TOKEN)
    assert sse.status == 200 and [n for n, _ in sse.events()] == ["status", "end"]
    sse.close()


def test_errors_come_from_jobs_status(stack_factory):
    s = start_events_stack(stack_factory)
    r = s.get("/jobs/events?job_id=" + J_BOB, token=ALICE_TOKEN)
    assert_error(r, 403, "forbidden", "belongs to another user")
    assert r.headers["Content-Type"] == "application/json"
    r = s.get("/jobs/events?job_id=" + J_BOB, token=BOB_TOKEN, stream=True)
    assert r.status_code == 200
    r.close()
    assert_error(s.get("/jobs/events?job_id=nope", token=ALICE_TOKEN), 400, "bad_request",
                 "job_id 'nope' is not a job id")
    unknown = "00000000-0000-4000-8000-000000000099"
    assert_error(s.get("/jobs/events?job_id=" + unknown, token=ALICE_TOKEN), 404, "not_found",
                 "job_id '%s' is not a known job" % unknown)
    assert_error(s.get("/jobs/events?job_id=..%2Fx", token=ALICE_TOKEN), 400, "bad_request",
                 "job_id '../x' is not a job id")
    assert_error(s.get("/jobs/events", token=ALICE_TOKEN), 400, "bad_request", "'job_id' is required")
    assert_error(s.get("/jobs/events?job_id=" + "a" * 100, token=ALICE_TOKEN), 400, "bad_request", "'job_id'")
    assert_error(s.get("/jobs/events?job_id=" + J_DONE, token=None), 401, "unauthorized")
    r = s.post("/jobs/events?job_id=" + J_DONE, {})
    assert r.status_code == 405, r.text


def test_no_runner_still_answers_from_the_record(stack_factory):
    """jobs/status and a stream's first event come from the job record on the data root: no runner is asked."""
    s = start_events_stack(stack_factory, runner=False)
    assert metrics_value(s, "ibsol_runners_attached") == 0
    assert s.get("/healthz", token=None).json()["runners"] == 0
    r = s.get("/jobs/status?job_id=" + J_DONE, token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "DONE" and body["results"] == [{"status": "OK", "output_folder": "/alice/out"}]
    assert json.loads(body["cur_status"]) == {"index": 2, "total": 2, "curMsg": "Completed 2/2 files",
                                              "status": "COMPLETE"}
    assert_error(s.get("/jobs/status?job_id=" + J_BOB, token=ALICE_TOKEN), 403, "forbidden", "belongs to another user")
    assert_error(s.get("/jobs/status?job_id=" + J_DONE + "&type=nope", token=ALICE_TOKEN), 400, "bad_request",
                 "type")
    sse = SSE(s, J_RUN)
    try:
        assert sse.status == 200
        name, first = sse.next()
        assert name == "status" and first["status"] == "RUNNING" and first["index"] == 1
    finally:
        sse.close()


def test_keepalive_and_a_gone_client_frees_its_stream(stack_factory):
    s = start_events_stack(stack_factory, IBSOL_EVENT_STREAMS="1", IBSOL_EVENTS_KEEPALIVE_MS="200")
    sse = SSE(s, J_RUN)
    assert sse.next()[0] == "status"
    assert sse.next() == ("comment", "keep-alive")
    # the one stream allowed is taken
    assert_error(s.get("/jobs/events?job_id=" + J_RUN, token=ALICE_TOKEN), 503, "unavailable", "too many event streams")
    sse.close()  # the gateway notices at its next keep-alive and frees the slot

    def another():
        r = s.get("/jobs/events?job_id=" + J_DONE, token=ALICE_TOKEN)
        return r.status_code == 200 and r
    r = wait_for("the stream slot to be freed", another, timeout=10, interval=0.1)
    assert r.text.startswith("event: status\n")


def test_stream_outlives_the_http_read_timeout(stack_factory):
    # the read timeout bounds a request's silent reads and stalled writes, not a stream that keeps writing
    s = start_events_stack(stack_factory, IBSOL_HTTP_READ_TIMEOUT_MS="300", IBSOL_EVENTS_KEEPALIVE_MS="200")
    sse = SSE(s, J_RUN)
    try:
        assert sse.next()[0] == "status"
        t0 = time.time()
        while time.time() - t0 < 1.5:  # five read timeouts of a client that sends nothing
            assert sse.next() == ("comment", "keep-alive")
        trigger(s, J_RUN)
        assert [n for n, _ in sse.events()] == ["progress", "end"]
        assert sse.finished()
    finally:
        sse.close()


def test_stream_ends_at_its_time_limit(stack_factory):
    s = start_events_stack(stack_factory, IBSOL_EVENTS_MAX_SECONDS="1")
    t0 = time.time()
    sse = SSE(s, J_RUN)
    events = sse.events()  # returns at the end of the body
    assert [n for n, _ in events] == ["status"]
    assert 0.9 < time.time() - t0 < 5
    sse.close()


def test_gateway_stop_ends_open_streams(stack_factory):
    s = start_events_stack(stack_factory)
    streams = [SSE(s, J_RUN) for _ in range(3)]
    for sse in streams:
        assert sse.next()[0] == "status"
    t0 = time.time()
    assert s.stop("gateway") == 0
    assert time.time() - t0 < 10
    for sse in streams:
        assert sse.events() == [] and sse.ended
        sse.close()


def test_events_address_in_use_is_named(stack_factory):
    s = start_events_stack(stack_factory, runner=False)
    other = stack_factory(start=False)
    p = other.start("gateway", env={"IBSOL_EVENTS_URL": "ipc://%s/run/events.ipc" % s.data})
    assert p.wait(timeout=30) == 1
    other.procs.pop("gateway")
    log = other.log("gateway")
    assert "IBSOL_EVENTS_URL: cannot listen on 'ipc://%s/run/events.ipc'" % s.data in log, log


def test_real_runner_job_streams_to_its_end(stack_factory):
    """With the real daemons: a run's events reach the gateway (gauges, counters) and its stream ends."""
    import shutil
    from conftest import SOURCE
    s = stack_factory()
    shutil.copytree(os.path.join(SOURCE, "docs/example-solution"), os.path.join(s.data, "drive/admin/example"))
    r = s.post("/solution/create", {"content_folder": "/admin/example", "output_folder": "/admin/build"})
    assert r.status_code == 200, r.text
    r = s.post("/marketplace/publish", {"ibsolution_path": r.json()["ibsolution_path"]})
    assert r.status_code == 200, r.text
    assert s.post("/marketplace/install", {"name": "invoice_demo", "version": "1.0.0"}).status_code == 200
    wait_for("the runner to attach", lambda: metrics_value(s, "ibsol_runners_attached") == 1)
    inp = os.path.join(s.data, "drive/admin/in")
    os.makedirs(inp)
    for i in range(5):
        with open(os.path.join(inp, "doc-%d.txt" % i), "w") as f:
            f.write("Invoice INV-%d\nTotal: 1.00\n" % i)
    r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": "/admin/in"})
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    sse = SSE(s, job, token=ADMIN_TOKEN, timeout=60)
    try:
        assert sse.status == 200
        events = sse.events()
        assert sse.finished()
    finally:
        sse.close()
    assert events[0][0] == "status" and events[0][1]["job_id"] == job
    last = events[-1][1]
    assert last["status"] == "COMPLETE" and last["state"] == "DONE" and last["index"] == 5, events
    assert all(n == "progress" for n, _ in events[1:-1])
    if len(events) > 1:
        assert events[-1][0] == "end"
    indexes = [d.get("index", 0) for _, d in events]
    assert indexes == sorted(indexes), events
    wait_for("the end to be counted",
             lambda: metrics_value(s, "ibsol_jobs_ended_total", '{status="COMPLETE"}') == 1 and
             metrics_value(s, "ibsol_jobs", '{state="RUNNING"}') == 0 and metrics_value(s, "ibsol_jobs", '{state="QUEUED"}') == 0)
