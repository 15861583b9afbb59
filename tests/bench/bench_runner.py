#!/usr/bin/python3
"""Benchmarks of the runner issue, each figure against an anchor measured side by side in the same run:

  1. POST solution/run_sync of a one-page plain-text invoice, 5-field program, under wrk -t2 -c16: req/s, p50,
     p99   vs  the bare engine (bare_engine.c): one civetweb process that decodes the same body's base64, runs
     the same compiled solution with the same engine library and answers the same records, with no daemons
     and no disk. Target: req/s ratio >= 0.4. Measured as well: run_sync with write_to_cache false (no output
     folder). And jobs/status of that job under the same wrk (issue 12, item 4; the gateway reads it from the
     job record) vs a bare civetweb JSON handler (bare_civetweb.c) answering a fixed body. Target: ratio >= 0.2.
     For scale, jobs/results of the same job: the cheapest call that still makes the gateway -> nng -> runner
     round trip.
  2. The same with a one-page PDF invoice. Target: run_sync >= 0.6 x the bare engine.
  3. solution/run over a folder of 1,000 one-to-three-page invoice PDFs, 10-field program, 2 runners, polled
     with jobs/status until DONE   vs  the same folder through `pdftotext -layout` plus Python `re` (the common
     alternative, one file after another). Target: wall-time ratio <= 0.5. Printed for scale as well: that
     alternative on 2 processes (the machine's cores), and the folder split into two jobs of 500.
  4. The same run with 1 runner: the speed-up of 2 runners over 1.
  5. solution/run over 100 of those PDFs (--floor-files; 5,000 is long), 2 runners, from the call to the job's
     finish_timestamp   vs  the floor (floor.c): the engine's document loader alone (Poppler, one text pass) on
     the same files, one process per core. Target: ratio <= 1.25. The same with a folder where one file
     in ten is a 200 dpi scan (OCR on, in both).
  6. OCR (issue 12, item 6): 40 one-page invoices rendered at 200 dpi, each as a grey PNG (pdftoppm) and as an
     image-only PDF (Ghostscript's pdfimage24): the fields solution/run reads from them against the invoices'
     true values (target >= 95 % right), and the engine's OCR pages/s (floor.c --ocr on the PNGs, one process
     per core) against the tesseract command on the same images (one process per core, OMP_THREAD_LIMIT=1, its
     fastest here).
  7. A small job: solution/run over 40 of those PDFs on 2 runners (the idle one helps the owner)   vs  the same
     job on 1 runner. Timed from the POST to the job's finish_timestamp (no polling interval in the figure);
     many repetitions, medians, the two layouts alternating run by run. Target: 2 runners take <= 1.1 x the
     time of 1 (a job that is shared must not wait for a tick to end). And a one-file solution/run on 2
     runners: from its file's result being saved (the result file's mtime) to the job's DONE in its record
     (finish_timestamp), and to a poller (every 5 ms) seeing DONE. Target: <= 50 ms.

Pools (2 cores): 1 runner runs with IBSOL_POOL=2, 2 runners with IBSOL_POOL=1 each, so every configuration has
as many file workers as cores. Every job's records are checked against the invoices' true values.
Run through tests/bench/run.sh runner (it builds first). Starts its own stack on scratch addresses with a
temporary data root, stops every daemon it started, removes its folders. Exits 0 whether or not a target is
met, 1 when a step cannot run.
"""
import argparse
import base64
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import requests

import invoices
from bench_engine import wait_quiet
from bench_foundation import (TOKEN, Stack, StepError, free_port, log, ok, parse_wrk, remove_root, report_head,
                              report_tail, report_wrk_errors, retrying, run_cmd, runs_of, verdict,
                              wait_port)

SYNC_SOL, RUN_SOL, VERSION = "bench_sync5", "bench_run10", "1.0.0"
NFILES = 1000
NSMALL, SMALL_REPS = 40, 8  # the small job's files; its repetitions per run
ONE_REPS = 10  # one-file jobs per run (issue 12, item 2: DONE within 50 ms of the file)
OCR_SOL = "bench_run10_ocr"  # RUN_SOL with OCR on, for the folder with scans
NFLOOR, SCAN_SHARE = 100, 10  # the floor's folder; one file in SCAN_SHARE of the mixed folder is a scan
NSCANS = 40  # one-page invoices scanned for the OCR figures (issue 12, item 6)


class RunnerStack(Stack):
    """The foundation benchmark's stack, with the runners started separately so their number and pools can
    change between measurements (same gateway, same data root)."""

    SERVICES = {"packager": "packager/ibsol-packager", "marketplace": "marketplace/ibsol-marketplace",
                "gateway": "gateway/ibsol-gateway"}

    def __init__(self, bindir, root):
        super().__init__(bindir, root)
        self.runners = {}
        self.layout = ""
        self.pools = []

    def spawn(self, name, rel, extra, host=None):
        """Starts a daemon; host says where (a subclass's hosts: host_argv, host_entry; None: here)."""
        exe = os.path.join(self.bindir, rel)
        if not os.access(exe, os.X_OK):
            raise StepError("%s is missing: the build did not produce it" % exe)
        logf = open(os.path.join(self.logdir, name + ".log"), "ab")
        p = subprocess.Popen(self.host_argv(host) + [exe], env=dict(self.env, **extra), stdout=logf,
                             stderr=subprocess.STDOUT, preexec_fn=self.host_entry(host))
        logf.close()
        return p

    def host_argv(self, host):
        """What a daemon's command line starts with to run on host."""
        return []

    def host_entry(self, host):
        """A preexec_fn that puts a daemon on host, or None."""
        return None

    def describe(self, pools, hosts):
        return "%d runner%s, IBSOL_POOL=%s" % (len(pools), "s" if len(pools) > 1 else "",
                                               "+".join(str(p) for p in pools))

    def start(self):
        for name, rel in self.SERVICES.items():
            self.procs[name] = self.spawn(name, rel, {"IBSOL_INSTANCE": name})
        self.wait(lambda h: all(h.get("services", {}).get(n) == "up" for n in ("packager", "marketplace")))

    def wait(self, cond, timeout=30):
        deadline, last = time.time() + timeout, ""
        while time.time() < deadline:
            for name, p in list(self.procs.items()) + list(self.runners.items()):
                if p.poll() is not None:
                    raise StepError("%s exited with %s:\n%s" % (name, p.returncode, self.log_tail(name)))
            try:
                r = self.session.get(self.url + "/healthz", timeout=5)
                last = r.text
                if cond(r.json()):
                    return
            except (requests.ConnectionError, ValueError) as e:
                last = str(e)
            time.sleep(0.1)
        raise StepError("stack not ready in %d s: %s" % (timeout, last))

    def set_runners(self, pools, hosts=None):
        """Stops the runners and starts len(pools) new ones, runner i with IBSOL_POOL=pools[i] (on hosts[i])."""
        self.stop_runners()
        hosts = hosts or [None] * len(pools)
        for i, (pool, host) in enumerate(zip(pools, hosts)):
            name = "runner%d" % (i + 1)
            self.runners[name] = self.spawn(name, "runner/ibsol-runner",
                                            {"IBSOL_INSTANCE": "bench-" + name, "IBSOL_POOL": str(pool)}, host)
        self.wait(lambda h: h.get("status") == "OK" and h.get("runners", 0) >= len(pools))
        time.sleep(0.5)  # every runner's request socket attached too, not only its heartbeat
        self.pools = list(pools)
        self.layout = self.describe(pools, hosts)
        log("runners: %s" % self.layout)

    def ran_by(self, job_id):
        """The runner whose log says it completed job_id (the gateway hands each job to one runner)."""
        for name in self.runners:
            if ("rid=%s job COMPLETE" % job_id) in self.log_tail(name, 1 << 16):
                return name
        return "?"

    def helped(self, job_id, names=None):
        """Files of job_id that runners other than its owner (or those named) did: their logs say so when they
        stop helping."""
        pat = re.compile(r"rid=%s helped with job: (\d+) of its files done here" % re.escape(job_id))
        return sum(int(m) for name in (names or self.runners) for m in pat.findall(self.log_tail(name, 1 << 22)))

    def stop_runners(self):
        for p in self.runners.values():
            p.send_signal(signal.SIGTERM)
        for name, p in self.runners.items():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log("%s did not stop on SIGTERM in 15 s; killing pid %d" % (name, p.pid))
                p.kill()
                p.wait()
        self.runners = {}

    def stop(self):
        self.stop_runners()
        super().stop()


def link_input(st, folder, path):
    """path as an input of /admin/bench/in/<folder>: a hard link to the cached invoice (a copy across file
    systems)."""
    dst = os.path.join(st.data, "drive", "admin", "bench", "in", folder, os.path.basename(path))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(path, dst)
    except OSError:
        shutil.copyfile(path, dst)


def install(st, name, refiner, ocr=False):
    folder = os.path.join(st.data, "drive", "admin", "bench", "src", name)
    invoices.write_solution(folder, name, VERSION, refiner)
    if ocr:
        flow = invoices.flow()
        flow["steps"][0]["ocr"] = {"enabled": True}
        with open(os.path.join(folder, "flow.json"), "w") as f:
            json.dump(flow, f, indent=2)
    rep = ok(st.post("/api/v1/solution/create", {"content_folder": "/admin/bench/src/" + name,
                                                  "output_folder": "/admin/bench/build"}), "solution/create")
    ok(st.post("/api/v1/marketplace/publish", {"ibsolution_path": rep["ibsolution_path"]}), "marketplace/publish")
    ok(st.post("/api/v1/marketplace/install", {"name": name, "version": VERSION}), "marketplace/install")


# ---- run_sync under wrk ----------------------------------------------------------------------------------------

def run_wrk_get(url, duration):
    p = run_cmd(["wrk", "-t2", "-c16", "-d%ds" % duration, "--latency", "--timeout", "10s",
                 "-H", "Authorization: Bearer " + TOKEN, url])
    return parse_wrk(p.stdout.decode())


def run_wrk_post(url, body_file, duration, lua):
    p = run_cmd(["wrk", "-t2", "-c16", "-d%ds" % duration, "--latency", "--timeout", "10s", "-s", lua,
                 "-H", "Authorization: Bearer " + TOKEN, url, "--", body_file])
    return parse_wrk(p.stdout.decode())


def sync_body(scratch, tag, file_name, data, **extra):
    body = {"name": SYNC_SOL, "version": VERSION,
            "files": [{"file_name": file_name, "file_content": base64.b64encode(data).decode()}]}
    body.update(extra)
    path = os.path.join(scratch, "run_sync_%s.json" % tag)
    with open(path, "w") as f:
        json.dump(body, f)
    return body, path


def check_records(recs, truth, what):
    want = {k: truth[k] for k in ("invoice_no", "vendor", "issued", "total", "item_count")}
    if len(recs) != 1 or invoices.diff(invoices.record_fields(recs[0]), want):
        raise StepError("%s extracted wrong values: %s" % (what, invoices.diff(
            invoices.record_fields(recs[0]) if recs else {}, want)))


def check_sync(st, body, truth, what):
    r = st.post("/api/v1/solution/run_sync", body)
    check_records(ok(r, what).get("records", []), truth, what)
    return r.content


class Anchor:
    """A bench program (bare_civetweb, bare_engine) on a free port, stopped on exit."""

    def __init__(self, scratch, exe, *args):
        self.port = free_port()
        name = os.path.basename(exe)
        logf = open(os.path.join(scratch, name + ".log"), "ab")
        self.proc = subprocess.Popen([exe, str(self.port), TOKEN, *args], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.url = "http://127.0.0.1:%d/api/v1/solution/run_sync" % self.port
        try:
            wait_port(self.port, self.proc)
        except StepError:
            self.stop()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def bench_sync(st, scratch, tag, file_name, data, truth, bare_bin, engine_bin, lua, duration, runs):
    """runs x (run_sync, run_sync with write_to_cache false, the bare engine anchor[, bare civetweb and
    jobs/status of the job: the round trip with no work]) under the same wrk, side by side."""
    body, body_file = sync_body(scratch, tag, file_name, data)
    _, nocache_file = sync_body(scratch, tag + "-nocache", file_name, data, write_to_cache=False)
    reply = check_sync(st, body, truth, "run_sync (%s)" % tag)
    check_sync(st, json.load(open(nocache_file)), truth, "run_sync (%s, write_to_cache false)" % tag)
    url = st.url + "/api/v1/solution/run_sync"
    flowbin = os.path.join(st.data, json.loads(reply)["binary_path"].lstrip("/"))
    # jobs/status of the job just run (the gateway reads its record), and for scale jobs/results of it: the
    # cheapest call that still makes run_sync's round trip (gateway -> nng -> runner -> one record read -> back).
    status_url = st.url + "/api/v1/jobs/status?job_id=" + json.loads(reply)["job_id"]
    results_url = st.url + "/api/v1/jobs/results?job_id=" + json.loads(reply)["job_id"]
    res = {"ib": [], "nocache": [], "engine": [], "bare": [], "floor": [], "trip": []}
    with Anchor(scratch, engine_bin, flowbin, json.loads(reply)["binary_path"]) as eng:
        chk = requests.post(eng.url, data=open(body_file, "rb").read(),
                            headers={"Authorization": "Bearer " + TOKEN}, timeout=30)
        if chk.status_code != 200:
            raise StepError("bare_engine answered %d: %s" % (chk.status_code, chk.text[:300]))
        check_records(chk.json().get("records", []), truth, "bare_engine (%s)" % tag)
        mine = [{k: v for k, v in r.items() if k != "output_file_path"} for r in json.loads(reply)["records"]]
        theirs = [{k: v for k, v in r.items() if k != "output_file_path"} for r in chk.json()["records"]]
        if mine != theirs:
            raise StepError("bare_engine's records differ from run_sync's: %s vs %s" % (theirs, mine))
        bare = Anchor(scratch, bare_bin, write_reply(scratch, tag, reply)) if bare_bin else None
        try:
            for i in range(runs):
                res["ib"].append(run_wrk_post(url, body_file, duration, lua))
                res["nocache"].append(run_wrk_post(url, nocache_file, duration, lua))
                res["engine"].append(run_wrk_post(eng.url, body_file, duration, lua))
                msg = ("run_sync %s run %d: ibsol %.0f req/s (p50 %.2f ms, p99 %.2f ms); write_to_cache false "
                       "%.0f req/s; bare engine %.0f req/s (p50 %.2f ms, p99 %.2f ms)" % (
                           tag, i + 1, res["ib"][-1]["rps"], res["ib"][-1]["p50"], res["ib"][-1]["p99"],
                           res["nocache"][-1]["rps"], res["engine"][-1]["rps"], res["engine"][-1]["p50"],
                           res["engine"][-1]["p99"]))
                if bare:
                    res["bare"].append(run_wrk_post(bare.url, body_file, duration, lua))
                    res["floor"].append(run_wrk_get(status_url, duration))
                    res["trip"].append(run_wrk_get(results_url, duration))
                    msg += "; bare civetweb %.0f req/s; jobs/status %.0f req/s; jobs/results %.0f req/s" % (
                        res["bare"][-1]["rps"], res["floor"][-1]["rps"], res["trip"][-1]["rps"])
                log(msg)
        finally:
            if bare:
                bare.stop()
    res.update({"bytes": len(data), "body_bytes": os.path.getsize(body_file), "layout": st.layout})
    return res


def write_reply(scratch, tag, reply):
    path = os.path.join(scratch, "reply_%s.json" % tag)
    with open(path, "wb") as f:
        f.write(reply)
    return path


# ---- solution/run over a folder --------------------------------------------------------------------------------

def wait_done(st, job_id, timeout=900, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = ok(st.get("/api/v1/jobs/status?job_id=" + job_id), "jobs/status")
        if body.get("state") == "DONE":
            return body
        time.sleep(interval)
    raise StepError("job %s did not end in %d s" % (job_id, timeout))


def run_folders(st, folders, tag):
    """Starts one job per input folder at once and waits for all; returns (seconds, [job ids], [out folders])."""
    jobs, outs = [], []
    t0 = time.perf_counter()
    for k, inp in enumerate(folders):
        out = "/admin/bench/out/%s-%d" % (tag, k)
        rep = ok(st.post("/api/v1/solution/run", {"name": RUN_SOL, "version": VERSION, "input_folder": inp,
                                                   "settings": {"output_folder": out}}), "solution/run")
        jobs.append(rep["job_id"])
        outs.append(out)
    for j in jobs:
        wait_done(st, j)
    dt = time.perf_counter() - t0
    for j in jobs:
        stat = ok(st.get("/api/v1/jobs/status?job_id=" + j), "jobs/status")
        cur = json.loads(stat["cur_status"]) if isinstance(stat.get("cur_status"), str) else stat.get("cur_status")
        if not cur or cur.get("status") != "COMPLETE":
            raise StepError("job %s ended %s" % (j, cur))
    return dt, jobs, outs


def check_jobs(st, jobs, truth_by_name):
    got = {}
    for j in jobs:
        for rec in ok(st.get("/api/v1/jobs/results?job_id=" + j, timeout=120), "jobs/results")["records"]:
            got[os.path.basename(rec["file_name"])] = invoices.record_fields(rec)
    bad = [n for n, want in truth_by_name.items() if invoices.diff(got.get(n, {}), want)]
    if bad:
        raise StepError("solution/run extracted wrong values on %d of %d files, e.g. %s: %s" % (
            len(bad), len(truth_by_name), bad[0], invoices.diff(got.get(bad[0], {}), truth_by_name[bad[0]])))


def clean_outputs(st, outs):
    for out in outs:
        shutil.rmtree(os.path.join(st.data, "drive", out.lstrip("/")), ignore_errors=True)
    os.sync()  # the next run does not pay for this one's writeback


def _alt_one(path):
    return path, invoices.py_extract(invoices.pdftotext(path))


def alternative(paths, procs=1):
    if procs == 1:
        return invoices.alternative(paths)
    # The workers must not inherit main()'s SIGTERM handler: Pool.terminate() stops them with SIGTERM.
    with multiprocessing.Pool(procs, initializer=signal.signal, initargs=(signal.SIGTERM, signal.SIG_DFL)) as pool:
        return dict(pool.map(_alt_one, paths, chunksize=8))


def bench_folder(st, folders, tag, truth_by_name, runs, alt_paths=None, alt_truth=None):
    """runs x (the job(s) on the folders[, the alternative one file after another and on 2 processes])."""
    t_ib, t_alt, t_alt2, placement = [], [], [], []
    for i in range(runs):
        dt, jobs, outs = run_folders(st, folders, "%s-%d" % (tag, i))
        check_jobs(st, jobs, truth_by_name)
        clean_outputs(st, outs)
        t_ib.append(dt)
        msg = "solution/run %s (%s) run %d: %.2f s" % (tag, st.layout, i + 1, dt)
        if len(jobs) > 1:
            ran = [st.ran_by(j) for j in jobs]
            placement.append(len(set(ran)))
            msg += " (jobs ran on %s)" % ", ".join(ran)
        if alt_paths:
            t0 = time.perf_counter()
            alt = alternative(alt_paths)
            t_alt.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            alt2 = alternative(alt_paths, 2)
            t_alt2.append(time.perf_counter() - t0)
            for res in (alt, alt2):
                bad = [p for p in alt_paths if invoices.diff(res[p], alt_truth[p])]
                if bad:
                    raise StepError("pdftotext + re extracted wrong values on %d files, e.g. %s" % (len(bad), bad[0]))
            msg += "; pdftotext+re %.2f s, on 2 processes %.2f s" % (t_alt[-1], t_alt2[-1])
        log(msg)
    return {"ib": t_ib, "anchor": t_alt, "anchor2": t_alt2, "layout": st.layout, "placement": placement}


# ---- a small job ----------------------------------------------------------------------------------------------

def bench_small(st, folder, truth_by_name, runs):
    """runs x SMALL_REPS jobs on `folder`, one after another: seconds from the POST to each job's
    finish_timestamp (same host, same clock), and the files other runners did."""
    times, helped = [], []
    for i in range(runs):
        for k in range(SMALL_REPS):
            out = "/admin/bench/out/small-%d-%d" % (i, k)
            t0 = time.time()
            rep = ok(st.post("/api/v1/solution/run", {"name": RUN_SOL, "version": VERSION, "input_folder": folder,
                                                       "settings": {"output_folder": out}}), "solution/run")
            job = rep["job_id"]
            deadline = t0 + 120
            while True:
                body = ok(st.get("/api/v1/jobs/status?job_id=" + job), "jobs/status")
                cur = json.loads(body["cur_status"])
                if body.get("state") == "DONE":
                    break
                if time.time() > deadline:
                    raise StepError("small job %s did not end in 120 s" % job)
                time.sleep(0.01)
            if cur.get("status") != "COMPLETE":
                raise StepError("small job %s ended %s" % (job, cur))
            times.append(cur["finish_timestamp"] - t0)
            check_jobs(st, [job], truth_by_name)
            clean_outputs(st, [out])
            helped.append(st.helped(job))
        log("small job (%d PDFs, %s) run %d: median %.3f s of %d jobs; files done by a helper: %s" % (
            len(truth_by_name), st.layout, i + 1, statistics.median(times[-SMALL_REPS:]), SMALL_REPS,
            " ".join(str(h) for h in helped[-SMALL_REPS:])))
    return {"ib": times, "helped": helped, "layout": st.layout}


def bench_one(st, folder, runs):
    """runs x ONE_REPS one-file jobs: seconds from the file's result being saved (its mtime under jobs/<id>.d/)
    to the job's finish_timestamp, and to a jobs/status poll (every 5 ms) first saying DONE."""
    lag, seen = [], []
    for i in range(runs):
        for k in range(ONE_REPS):
            out = "/admin/bench/out/one-%d-%d" % (i, k)
            job = ok(st.post("/api/v1/solution/run", {"name": RUN_SOL, "version": VERSION, "input_folder": folder,
                                                       "settings": {"output_folder": out}}), "solution/run")["job_id"]
            body = wait_done(st, job, timeout=60, interval=0.005)
            t_seen = time.time()
            cur = json.loads(body["cur_status"])
            if cur.get("status") != "COMPLETE":
                raise StepError("one-file job %s ended %s" % (job, cur))
            saved = os.stat(os.path.join(st.data, "jobs", job + ".d", "0.json")).st_mtime
            lag.append(cur["finish_timestamp"] - saved)
            seen.append(t_seen - saved)
            clean_outputs(st, [out])
        log("one-file job (%s) run %d: DONE %.1f ms after its file (median of %d), seen by a poller after %.1f ms" % (
            st.layout, i + 1, 1000 * statistics.median(lag[-ONE_REPS:]), ONE_REPS,
            1000 * statistics.median(seen[-ONE_REPS:])))
    return {"lag": lag, "seen": seen, "layout": st.layout}


# ---- the floor: the engine's document loads alone, on every core ------------------------------------------------

def scan_png(pdf, png):
    """The first page of pdf as a scanner leaves it: a 200 dpi grey PNG (pdftoppm), written to png."""
    run_cmd(["pdftoppm", "-r", "200", "-gray", "-png", "-singlefile", pdf, png[:-4]])


def make_floor_folders(st, docs, n):
    """/admin/bench/in/floor: the first n invoices (hard links); /admin/bench/in/mixed: the same with one file in
    SCAN_SHARE replaced by a 200 dpi grey image of a one-page invoice (pdftoppm), as a scanner leaves it.
    Returns ({name: truth} of the PDFs, {name: truth} of the mixed folder's PDFs, scans)."""
    truth, mixed_truth, scans = {}, {}, 0
    for k, (path, t, pages) in enumerate(docs[:n]):
        name = os.path.basename(path)
        for d in ("floor", "mixed"):
            dst = os.path.join(st.data, "drive", "admin", "bench", "in", d, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if d == "mixed" and k % SCAN_SHARE == SCAN_SHARE - 1 and pages == 1:
                scan_png(path, dst[:-4] + ".png")
                scans += 1
                continue
            os.link(path, dst)
            (truth if d == "floor" else mixed_truth)[name] = t
    return truth, mixed_truth, scans


def make_scan_folder(st, docs):
    """/admin/bench/in/scans: NSCANS one-page invoices as a scanner leaves them, each twice: a 200 dpi grey PNG
    and an image-only PDF made at 200 dpi; /admin/bench/in/scans_png: the PNGs alone. Returns {name: truth}."""
    drive = os.path.join(st.data, "drive", "admin", "bench", "in")
    for d in ("scans", "scans_png"):
        os.makedirs(os.path.join(drive, d), exist_ok=True)
    truth = {}
    for path, t, _ in [d for d in docs if d[2] == 1][:NSCANS]:
        stem = os.path.basename(path)[:-4]
        png = os.path.join(drive, "scans", stem + ".png")
        scan_png(path, png)
        os.link(png, os.path.join(drive, "scans_png", stem + ".png"))
        truth[stem + ".png"] = t
        run_cmd(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfimage24", "-r200",
                 "-sOutputFile=" + os.path.join(drive, "scans", stem + "-image.pdf"), path])
        truth[stem + "-image.pdf"] = t
    return truth


def field_accuracy(st, job, truth):
    """{"png"|"pdf": [fields right, fields]} of the job's records against the invoices' true values."""
    acc = {"png": [0, 0], "pdf": [0, 0]}
    for rec in ok(st.get("/api/v1/jobs/results?job_id=" + job, timeout=120), "jobs/results")["records"]:
        want = truth.get(os.path.basename(rec["file_name"]))
        if want is None:
            continue
        kind = acc["png" if rec["file_name"].endswith(".png") else "pdf"]
        kind[1] += len(want)
        kind[0] += len(want) - len(invoices.diff(invoices.record_fields(rec), want))
    return acc


def _tesseract_one(png):
    subprocess.run(["tesseract", png, "stdout"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=dict(os.environ, OMP_THREAD_LIMIT="1"))


def bench_ocr(st, floor_bin, truth, runs):
    """runs x (solution/run of the scans folder; floor --ocr on the PNGs; tesseract on the same PNGs)."""
    png_dir = os.path.join(st.data, "drive", "admin", "bench", "in", "scans_png")
    pngs = sorted(os.path.join(png_dir, n) for n in os.listdir(png_dir))
    res = {"ib": [], "floor": [], "tess": [], "acc": None, "pages": len(truth), "pngs": len(pngs)}
    for i in range(runs):
        dt, job = timed_job(st, OCR_SOL, "/admin/bench/in/scans", "/admin/bench/out/scans-%d" % i)
        res["ib"].append(dt)
        res["acc"] = field_accuracy(st, job, truth)
        p = run_cmd([floor_bin, "--ocr", png_dir])
        res["floor"].append(json.loads(p.stdout.decode().strip().splitlines()[-1])["seconds"])
        t0 = time.perf_counter()
        with multiprocessing.Pool(os.cpu_count(), initializer=signal.signal,
                                  initargs=(signal.SIGTERM, signal.SIG_DFL)) as pool:
            pool.map(_tesseract_one, pngs, chunksize=1)
        res["tess"].append(time.perf_counter() - t0)
        log("OCR run %d: solution/run of %d scans %.2f s; floor --ocr on %d PNGs %.2f s; tesseract %.2f s; "
            "fields right %s" % (i + 1, len(truth), dt, len(pngs), res["floor"][-1], res["tess"][-1], res["acc"]))
    return res


def timed_job(st, sol, folder, out):
    """Seconds from the POST of solution/run to the job's finish_timestamp (same host, same clock)."""
    t0 = time.time()
    job = ok(st.post("/api/v1/solution/run", {"name": sol, "version": VERSION, "input_folder": folder,
                                              "settings": {"output_folder": out}}), "solution/run")["job_id"]
    cur = json.loads(wait_done(st, job)["cur_status"])
    if cur.get("status") != "COMPLETE":
        raise StepError("job %s ended %s" % (job, cur))
    return cur["finish_timestamp"] - t0, job


def bench_floor(st, floor_bin, tag, sol, folder, truth, runs, ocr):
    """runs x (solution/run of the folder on the runners as they are, call to finish; the floor program on the
    same files, all cores)."""
    local = os.path.join(st.data, "drive", folder.lstrip("/"))
    t_ib, t_floor = [], []
    for i in range(runs):
        out = "/admin/bench/out/%s-%d" % (tag, i)
        dt, job = timed_job(st, sol, folder, out)
        check_jobs(st, [job], truth)
        clean_outputs(st, [out])
        p = run_cmd([floor_bin] + (["--ocr"] if ocr else []) + [local])
        fl = json.loads(p.stdout.decode())
        if fl["failed"]:
            raise StepError("floor could not load %d files of %s" % (fl["failed"], local))
        t_ib.append(dt)
        t_floor.append(fl["seconds"])
        log("solution/run %s (%d files, %s) run %d: %.2f s; floor %.2f s (%d pages)" % (
            tag, fl["files"], st.layout, i + 1, dt, fl["seconds"], fl["pages"]))
    return {"ib": t_ib, "floor": t_floor, "layout": st.layout, "files": fl["files"], "pages": fl["pages"]}


# ---- main ------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="release build folder (build-bench)")
    ap.add_argument("--bare", required=True, help="the bare_civetweb executable")
    ap.add_argument("--engine", required=True, help="the bare_engine executable (run_sync's anchor)")
    ap.add_argument("--gen", required=True, help="the gen_pdf executable")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--wrk-seconds", type=int, default=6)
    ap.add_argument("--files", type=int, default=NFILES)
    ap.add_argument("--floor", help="the floor executable (floor.c); without it the floor figures are skipped")
    ap.add_argument("--floor-files", type=int, default=NFLOOR,
                    help="files of the floor comparison (e.g. 5000: long; more than --files generates more)")
    ap.add_argument("--cache", help="folder of generated invoices shared with bench_engine.py (kept)")
    ap.add_argument("--tries", type=int, default=int(os.environ.get("IBSOL_BENCH_TRIES", "1")),
                    help="attempts per step when an endpoint fails (60 s apart)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (for profiling)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lua = os.path.join(os.path.dirname(os.path.abspath(__file__)), "post.lua")

    root = tempfile.mkdtemp(prefix="ibsol-bench-runner-", dir=os.environ.get("IBSOL_BENCH_TMP", "/tmp"))
    scratch = os.path.join(root, "scratch")
    os.makedirs(scratch)
    cache = args.cache or os.path.join(root, "invoices")
    st = RunnerStack(os.path.abspath(args.bin), root)
    results, failures = {}, []
    try:
        t0 = time.time()
        docs = invoices.generate(args.gen, cache, args.files)
        log("%d invoices, %d pages in %.1f s (seed %d)" % (len(docs), sum(n for _, _, n in docs), time.time() - t0,
                                                           invoices.SEED))
        # The input folder: hard links to the cached invoices; two halves for the two-job variant; the first
        # NSMALL for the small job.
        names, small_names = {}, {}
        for k, (path, truth, _) in enumerate(docs):
            half = "h%d" % (k * 2 // len(docs))
            for d in ("all", half) + (("small",) if k < NSMALL else ()) + (("one",) if k == 0 else ()):
                link_input(st, d, path)
            names[os.path.basename(path)] = truth
            if k < NSMALL:
                small_names[os.path.basename(path)] = truth
        alt_paths = [p for p, _, _ in docs]
        alt_truth = {p: t for p, t, _ in docs}
        text, text_truth = invoices.text_invoice()
        one_page = next((p, t) for p, t, n in docs if n == 1)

        st.start()
        log("stack up at %s (data root %s)" % (st.url, st.data))
        retrying("install", lambda: (install(st, SYNC_SOL, invoices.REFINER5),
                                     install(st, RUN_SOL, invoices.REFINER10),
                                     install(st, OCR_SOL, invoices.REFINER10, ocr=True)), args.tries)
        log("load %.2f" % wait_quiet())

        st.set_runners([1, 1])
        for tag, fname, data, truth, bare in (
                ("text", "invoice.txt", text, text_truth, args.bare),
                ("pdf", os.path.basename(one_page[0]), open(one_page[0], "rb").read(), one_page[1], None)):
            try:
                results["sync_" + tag] = retrying("run_sync %s" % tag, lambda: bench_sync(
                    st, scratch, tag, fname, data, truth, bare and os.path.abspath(bare),
                    os.path.abspath(args.engine), lua, args.wrk_seconds, args.runs), args.tries)
            except (StepError, requests.RequestException) as e:
                failures.append("run_sync (%s): %s" % (tag, e))

        folders = ["/admin/bench/in/all"]
        try:
            results["run2"] = retrying("solution/run, 2 runners", lambda: bench_folder(
                st, folders, "r2", names, args.runs, alt_paths, alt_truth), args.tries)
            results["run2_split"] = bench_folder(st, ["/admin/bench/in/h0", "/admin/bench/in/h1"], "r2split",
                                                 names, args.runs)
            results["one"] = bench_one(st, "/admin/bench/in/one", args.runs)
            if args.floor:
                fdocs = docs if args.floor_files <= len(docs) else invoices.generate(
                    args.gen, cache, args.floor_files)
                ftruth, mtruth, nscans = make_floor_folders(st, fdocs, args.floor_files)
                results["floor"] = bench_floor(st, os.path.abspath(args.floor), "floor", RUN_SOL,
                                               "/admin/bench/in/floor", ftruth, args.runs, False)
                results["mixed"] = bench_floor(st, os.path.abspath(args.floor), "mixed", OCR_SOL,
                                               "/admin/bench/in/mixed", mtruth, args.runs, True)
                results["mixed"]["scans"] = nscans
                results["ocr"] = bench_ocr(st, os.path.abspath(args.floor), make_scan_folder(st, docs),
                                           args.runs)
            st.set_runners([2])
            results["run1"] = bench_folder(st, folders, "r1", names, args.runs)
            # The small job on 1 runner and on 2, alternating run by run: this machine's speed drifts over
            # minutes, and the ratio is of two tenths of a second.
            for _ in range(args.runs):
                for key, pools in (("small1", [2]), ("small2", [1, 1])):
                    if st.pools != pools:
                        st.set_runners(pools)
                    c = bench_small(st, "/admin/bench/in/small", small_names, 1)
                    got = results.setdefault(key, {"ib": [], "helped": [], "layout": c["layout"]})
                    got["ib"] += c["ib"]
                    got["helped"] += c["helped"]
        except (StepError, requests.RequestException) as e:
            failures.append("solution/run: %s" % e)
    except (StepError, requests.RequestException, RuntimeError) as e:
        failures.append("setup: %s" % e)
    finally:
        st.stop()
        remove_root(root, args.keep)

    med = statistics.median
    report_head("runner", args.runs)
    for tag, what, target in (("text", "one-page text invoice", 0.4), ("pdf", "one-page PDF invoice", 0.6)):
        c = results.get("sync_" + tag)
        if not c:
            continue
        m = {k: {q: med(w[q] for w in c[k]) for q in ("rps", "p50", "p99")} for k in ("ib", "nocache", "engine")}
        erps = m["engine"]["rps"]
        print("run_sync, 5 fields, %s (%d B; %s), wrk -t2 -c16 -d%ds:" % (what, c["bytes"], c["layout"],
                                                                           args.wrk_seconds))
        print("    bare engine (same engine, one process, no disk) %.0f req/s, p50 %.2f ms, p99 %.2f ms" % (
            erps, m["engine"]["p50"], m["engine"]["p99"]))
        for k, name in (("ib", "run_sync"), ("nocache", "run_sync write_to_cache false")):
            ratio = m[k]["rps"] / erps if erps else float("nan")
            print("    %-30s %.0f req/s, p50 %.2f ms, p99 %.2f ms; ratio %.3f (target >= %.1f) %s" % (
                name, m[k]["rps"], m[k]["p50"], m[k]["p99"], ratio, target, verdict(ratio >= target)))
        print("    runs: run_sync %s; write_to_cache false %s; bare engine %s req/s" % (
            runs_of((w["rps"] for w in c["ib"]), "%.0f"), runs_of((w["rps"] for w in c["nocache"]), "%.0f"),
            runs_of((w["rps"] for w in c["engine"]), "%.0f")))
        if c["bare"]:
            brps = med(w["rps"] for w in c["bare"])
            frps = med(w["rps"] for w in c["floor"])
            ratio = frps / brps if brps else float("nan")
            print("jobs/status of that job (the gateway reads its record), wrk -t2 -c16: %.0f req/s, "
                  "p50 %.2f ms, p99 %.2f ms;\n    bare civetweb handler %.0f req/s; ratio %.3f (target >= 0.2) %s" % (
                      frps, med(w["p50"] for w in c["floor"]), med(w["p99"] for w in c["floor"]), brps, ratio,
                      verdict(ratio >= 0.2)))
            trps = med(w["rps"] for w in c["trip"])
            print("    for scale, jobs/results of it (gateway -> nng -> runner -> record read -> back): %.0f req/s, "
                  "p50 %.2f ms; ratio %.3f" % (trps, med(w["p50"] for w in c["trip"]), trps / brps if brps else
                                               float("nan")))
            print("    runs: jobs/status %s; bare civetweb %s req/s" % (
                runs_of((w["rps"] for w in c["floor"]), "%.0f"), runs_of((w["rps"] for w in c["bare"]), "%.0f")))
        report_wrk_errors([(n, w) for n in ("ib", "nocache", "engine", "bare", "floor", "trip") for w in c[n]])
    if "run2" in results:
        c = results["run2"]
        ratio = med(c["ib"]) / med(c["anchor"])
        print("solution/run, 10 fields, %d PDFs (%d pages), %s: %.2f s; pdftotext -layout + re %.2f s; ratio %.2f "
              "(target <= 0.5) %s" % (args.files, sum(n for _, _, n in docs), c["layout"], med(c["ib"]),
                                      med(c["anchor"]), ratio, verdict(ratio <= 0.5)))
        print("    for scale: pdftotext + re on 2 processes %.2f s (ratio %.2f); runs: ibsol %s s; anchor %s s"
              % (med(c["anchor2"]), med(c["ib"]) / med(c["anchor2"]), runs_of(c["ib"]), runs_of(c["anchor"])))
    if "run1" in results:
        c1 = results["run1"]
        line = "solution/run, same folder, %s: %.2f s" % (c1["layout"], med(c1["ib"]))
        if "run2" in results:
            line += "; speed-up of 2 runners (%s) over 1: %.2fx (no target)" % (
                results["run2"]["layout"], med(c1["ib"]) / med(results["run2"]["ib"]))
        print(line)
        if "run2_split" in results:
            c = results["run2_split"]
            print("    the folder as two jobs of %d (%s): %.2f s, speed-up over 1 runner %.2fx; runs %s s; "
                  "runs with the jobs on two runners: %d of %d"
                  % (args.files // 2, c["layout"], med(c["ib"]), med(c1["ib"]) / med(c["ib"]),
                     runs_of(c["ib"]), sum(1 for n in c["placement"] if n == 2),
                     len(c["placement"])))
    for key, what in (("floor", "PDFs"), ("mixed", "files, scans among them")):
        c = results.get(key)
        if not c:
            continue
        ratio = med(c["ib"]) / med(c["floor"])
        print("solution/run, 10 fields, %d %s (%d pages%s), %s, call to finish: %.2f s; floor (the engine's "
              "document loads alone, %d processes) %.2f s; ratio %.2f (target <= 1.25) %s" % (
                  c["files"], what, c["pages"], ", %d scans OCR'd" % c["scans"] if "scans" in c else "",
                  c["layout"], med(c["ib"]), os.cpu_count(), med(c["floor"]), ratio, verdict(ratio <= 1.25)))
        print("    runs: ibsol %s s; floor %s s" % (runs_of(c["ib"]), runs_of(c["floor"])))
    if "ocr" in results:
        c = results["ocr"]
        eng, tess = c["pngs"] / med(c["floor"]), c["pngs"] / med(c["tess"])
        print("OCR, %d one-page invoices scanned at 200 dpi: the engine's OCR (floor --ocr, %d processes) %.2f pages/s; "
              "the tesseract command (%d processes, OMP_THREAD_LIMIT=1) %.2f pages/s; ratio %.2f" % (
                  c["pngs"], os.cpu_count(), eng, os.cpu_count(), tess, eng / tess))
        for kind, what in (("png", "grey PNG"), ("pdf", "image-only PDF")):
            right, total = c["acc"][kind]
            share = right / total if total else float("nan")
            print("    fields read right from the %s: %d of %d, %.1f %% (target >= 95 %%) %s" % (
                what, right, total, 100 * share, verdict(share >= 0.95)))
        print("    solution/run of the %d scans (both kinds), 2 runners: %.2f s, %.2f pages/s; runs: ibsol %s s; "
              "floor %s s; tesseract %s s" % (c["pages"], med(c["ib"]), c["pages"] / med(c["ib"]), runs_of(c["ib"]),
                                              runs_of(c["floor"]), runs_of(c["tess"])))
    if "small2" in results and "small1" in results:
        c2, c1 = results["small2"], results["small1"]
        ratio = med(c2["ib"]) / med(c1["ib"])
        print("solution/run, 10 fields, %d PDFs, %s: %.3f s; the same job on %s %.3f s; ratio %.2f (target <= 1.1) %s"
              % (NSMALL, c2["layout"], med(c2["ib"]), c1["layout"], med(c1["ib"]), ratio, verdict(ratio <= 1.1)))
        print("    POST to finish_timestamp, %d jobs each; p90 %.3f s vs %.3f s; jobs a helper joined: %d of %d "
              "(median %d files of %d)" % (len(c2["ib"]), quantile(c2["ib"], 0.9), quantile(c1["ib"], 0.9),
                                           sum(1 for h in c2["helped"] if h), len(c2["helped"]),
                                           med(c2["helped"]), NSMALL))
    if "one" in results:
        c = results["one"]
        print("solution/run of one PDF, %s: DONE in its record %.1f ms after its file's result was saved (median "
              "of %d; max %.1f ms), seen by a poller every 5 ms after %.1f ms (target <= 50 ms) %s" % (
                  c["layout"], 1000 * med(c["lag"]), len(c["lag"]), 1000 * max(c["lag"]), 1000 * med(c["seen"]),
                  verdict(med(c["seen"]) <= 0.05)))
    return report_tail(failures)


def quantile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


if __name__ == "__main__":
    sys.exit(main())
