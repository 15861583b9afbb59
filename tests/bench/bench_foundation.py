#!/usr/bin/python3
"""Benchmarks of the foundation issue. Each ibsol figure is printed as a ratio against an anchor measured side
by side in the same run, on the same machine, from the same data:

  1. solution/create of a 100 MiB, 2,000-file content folder   vs  zip -r -q -X -6 of that folder
  2. marketplace/install of the published package              vs  unzip -q of the same .ibsolution
  3. GET /marketplace/list through the gateway under wrk       vs  a bare civetweb JSON handler (bare_civetweb.c)

Run through tests/bench/run.sh (it builds first). Starts its own stack on scratch addresses with a temporary
data root (as tests/blackbox/conftest.py does), stops every daemon it started and removes its temporary folders.
Exits 0 whether or not a target is met: benchmarks inform, they do not gate. Exits 1 when a step cannot run.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

TOKEN = "bench-admin-token-0123456789abcdef"
SEED = 20240611
SOL_NAME = "bench_foundation"
SOL_VERSION = "1.0.0"

MANIFEST = {"name": SOL_NAME, "version": SOL_VERSION, "short_description": "Foundation benchmark invoices",
            "authors": ["ibsol bench"], "industry": "Finance"}
FLOW = {"steps": [{"type": "process_files"},
                  {"type": "apply_refiner", "program": "refiners/main.ibrefiner"}]}
REFINER = {"fields": [{"name": "total", "formula": "regex(INPUT_COL, 'Total:\\s*([0-9.,]+)')", "type": "FLOAT"},
                      {"name": "vendor", "formula": "clean(scan_right(INPUT_COL, 'Vendor:'))"}]}

DAEMONS = {
    "packager": "packager/ibsol-packager",
    "marketplace": "marketplace/ibsol-marketplace",
    "runner": "runner/ibsol-runner",
    "gateway": "gateway/ibsol-gateway",
}
OPTIONAL = {"runner"}  # not measured; started so /healthz is whole


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def runner_binary(bin_dir):
    """The runner of a build folder, or None (logged) when the build did not produce it."""
    runner = os.path.join(os.path.abspath(bin_dir), "runner", "ibsol-runner")
    if os.access(runner, os.X_OK):
        return runner
    log("%s is missing: the build did not produce it" % runner)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StepError(Exception):
    pass


# ---- the stack ------------------------------------------------------------------------------------------------

class Stack:
    def __init__(self, bindir, root):
        self.bindir = bindir
        self.root = root
        self.data = os.path.join(root, "data")
        self.logdir = os.path.join(root, "logs")
        os.makedirs(self.data)
        os.makedirs(self.logdir)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ)
        self.env.update({"IBSOL_DATA": self.data, "IBSOL_HTTP_PORT": str(self.port),
                         "IBSOL_REQUEST_TIMEOUT_MS": "600000",
                         "IBSOL_HTTP_MAX_PER_CLIENT": "0"})  # wrk's 32 connections come from one address
        # The tokens file first: the gateway would otherwise create one with a random admin token.
        with open(os.path.join(self.data, "tokens"), "w") as f:
            f.write("# bench tokens\n%s admin admin\n" % TOKEN)
        os.chmod(os.path.join(self.data, "tokens"), 0o600)
        self.procs = {}
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + TOKEN

    def start(self):
        for name, rel in DAEMONS.items():
            exe = os.path.join(self.bindir, rel)
            if not os.access(exe, os.X_OK):
                if name in OPTIONAL:
                    log("%s is missing; running without it" % exe)
                    continue
                raise StepError("%s is missing: the build did not produce it" % exe)
            logf = open(os.path.join(self.logdir, name + ".log"), "ab")
            e = dict(self.env, IBSOL_INSTANCE=name)
            self.procs[name] = subprocess.Popen([exe], env=e, stdout=logf, stderr=subprocess.STDOUT)
            logf.close()
        deadline = time.time() + 30
        last = ""
        while time.time() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise StepError("%s exited with %s at start:\n%s" % (name, p.returncode, self.log_tail(name)))
            try:
                r = self.session.get(self.url + "/healthz", timeout=5)
                last = r.text
                if r.status_code == 200:
                    return
                # Without the optional runner, healthz is 503: enough when the services measured are up.
                services = r.json().get("services", {}) if r.status_code == 503 else {}
                if services and not (OPTIONAL & set(self.procs)) and all(
                        services.get(n) == "up" for n in DAEMONS if n not in OPTIONAL and n != "gateway"):
                    return
            except requests.ConnectionError as e:
                last = str(e)
            time.sleep(0.1)
        raise StepError("stack did not become healthy in 30 s: %s" % last)

    def pid(self, name):
        return self.procs[name].pid

    def log_tail(self, name, n=3000):
        try:
            with open(os.path.join(self.logdir, name + ".log"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def post(self, path, body, timeout=600):
        return self.session.post(self.url + path, json=body, timeout=timeout)

    def get(self, path, timeout=60):
        return self.session.get(self.url + path, timeout=timeout)

    def stop(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs.items():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log("%s did not stop on SIGTERM in 15 s; killing pid %d" % (name, p.pid))
                p.kill()
                p.wait()
        self.procs = {}
        self.session.close()


def ok(r, what):
    if r.status_code != 200:
        raise StepError("%s: HTTP %d %s" % (what, r.status_code, r.text[:500]))
    return r.json()


# ---- content ---------------------------------------------------------------------------------------------------

def make_vocab(rng, n=4000):
    syll = ["ka", "ro", "ven", "dor", "al", "in", "vo", "ice", "to", "tal", "ne", "mar", "ket", "pro", "cess",
            "da", "ta", "fi", "le", "ex", "tra", "ct", "sum", "ma", "ry", "de", "li", "ver", "y", "con", "tract",
            "pay", "ment", "ac", "count", "or", "der", "ship", "bill", "ing", "tax", "re", "fund", "net", "gross"]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syll) for _ in range(rng.randint(1, 4))))
    words = sorted(words)
    rng.shuffle(words)
    # Zipf-like frequencies, as in real text.
    weights = [1.0 / (i + 1) for i in range(n)]
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    return words, cum


def text_blob(rng, words, cum, size):
    out, got = [], 0
    while got < size:
        ws = rng.choices(words, cum_weights=cum, k=400)
        for j in range(0, 400, 40):
            ws[j] = ws[j].capitalize()
        # numbers and amounts, as in invoices and reports
        ws[rng.randrange(400)] = "Total: %d,%03d.%02d" % (rng.randrange(100), rng.randrange(1000), rng.randrange(100))
        ws[rng.randrange(400)] = "Vendor: %s %s Corp" % (rng.choice(words).capitalize(), rng.choice(words).capitalize())
        ws[rng.randrange(400)] = "%04d-%02d-%02d" % (rng.randint(2015, 2024), rng.randint(1, 12), rng.randint(1, 28))
        ws[rng.randrange(400)] = str(rng.randrange(10 ** rng.randint(1, 9)))
        lines = [" ".join(ws[j:j + 12]) + ("." if rng.random() < 0.7 else ",") for j in range(0, 400, 12)]
        chunk = "\n".join(lines) + "\n"
        out.append(chunk)
        got += len(chunk)
    return "".join(out)[:size].encode()


def json_blob(rng, words, cum, size):
    recs, got = [], 2
    while got < size:
        rec = {"id": rng.randrange(10 ** 8), "vendor": " ".join(rng.choices(words, cum_weights=cum, k=2)).title(),
               "date": "%04d-%02d-%02d" % (rng.randint(2015, 2024), rng.randint(1, 12), rng.randint(1, 28)),
               "total": round(rng.uniform(1, 100000), 2), "currency": rng.choice(["USD", "EUR", "GBP", "JPY"]),
               "items": [{"sku": "SKU-%06d" % rng.randrange(10 ** 6), "qty": rng.randint(1, 50),
                          "desc": " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(2, 8)))}
                         for _ in range(rng.randint(1, 5))]}
        s = json.dumps(rec)
        recs.append(s)
        got += len(s) + 2
    text = "[\n" + ",\n".join(recs) + "\n]\n"
    return text.encode()  # valid JSON; may pass `size` by one record


def csv_blob(rng, words, cum, size):
    rows = ["id,date,vendor,amount,currency,description"]
    got = len(rows[0]) + 1
    while got < size:
        row = "%d,%04d-%02d-%02d,%s,%.2f,%s,%s" % (
            rng.randrange(10 ** 7), rng.randint(2015, 2024), rng.randint(1, 12), rng.randint(1, 28),
            " ".join(rng.choices(words, cum_weights=cum, k=2)).title(), rng.uniform(1, 50000),
            rng.choice(["USD", "EUR", "GBP"]), " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(3, 9))))
        rows.append(row)
        got += len(row) + 1
    return ("\n".join(rows) + "\n").encode()


def write_solution_files(folder, manifest):
    os.makedirs(os.path.join(folder, "refiners"), exist_ok=True)
    files = {"package.json": json.dumps(manifest, indent=2), "flow.json": json.dumps(FLOW, indent=2),
             "refiners/main.ibrefiner": json.dumps(REFINER, indent=2),
             "README.md": "# %s\n\n%s\n" % (manifest["name"], manifest["short_description"])}
    for rel, text in files.items():
        with open(os.path.join(folder, rel), "w") as f:
            f.write(text)
    return len(files)


def generate_content(folder, total_bytes=100 * 2 ** 20, nfiles=2000, binary_share=0.10, nbinary=20):
    """A deterministic (seeded) content folder: a valid solution plus nested folders of invoice-like text, JSON
    and CSV files, and a few incompressible binary files (~binary_share of the bytes)."""
    rng = random.Random(SEED)
    words, cum = make_vocab(rng)
    nfixed = write_solution_files(folder, MANIFEST)
    ngen = nfiles - nfixed
    bin_bytes = int(total_bytes * binary_share)
    text_bytes = total_bytes - bin_bytes - sum(os.path.getsize(os.path.join(d, f))
                                               for d, _, fs in os.walk(folder) for f in fs)
    ntext = ngen - nbinary
    raw = [rng.lognormvariate(0, 1.0) for _ in range(ntext)]
    scale = text_bytes / sum(raw)
    text_sizes = [max(64, int(x * scale)) for x in raw]
    bin_sizes = [bin_bytes // nbinary] * nbinary
    kinds = ["bin"] * nbinary + [rng.choices(["txt", "json", "csv"], weights=[6, 2, 2])[0] for _ in range(ntext)]
    sizes = bin_sizes + text_sizes
    order = list(range(ngen))
    rng.shuffle(order)
    written = 0
    for k, i in enumerate(order):
        kind, size = kinds[i], sizes[i]
        depth = rng.randint(1, 3)
        parts = ["data"] + ["%s_%02d" % (["batch", "vendor", "month"][d], rng.randrange(6)) for d in range(depth)]
        d = os.path.join(folder, *parts)
        os.makedirs(d, exist_ok=True)
        if kind == "bin":
            name, data = "scan_%04d.png" % k, rng.randbytes(size)
        elif kind == "txt":
            name, data = "doc_%04d.txt" % k, text_blob(rng, words, cum, size)
        elif kind == "json":
            name, data = "records_%04d.json" % k, json_blob(rng, words, cum, size)
        else:
            name, data = "table_%04d.csv" % k, csv_blob(rng, words, cum, size)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        written += len(data)
    count, total = 0, 0
    for d, _, fs in os.walk(folder):
        for f in fs:
            count += 1
            total += os.path.getsize(os.path.join(d, f))
    return count, total


# ---- measurements ----------------------------------------------------------------------------------------------

def timed(fn, settle=False):
    """Seconds fn took. With settle, dirty pages left by the previous step (the other side's output) are
    flushed first, untimed, so neither side pays for the other's writeback."""
    if settle:
        os.sync()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def gnu_time(argv):
    """Runs argv under GNU time -v: (maximum resident set size in KiB, wall seconds, CPU seconds user + system,
    stdout). StepError when argv fails or time -v gives no such figures."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise StepError("%s failed (%d): %s" % (argv[0], p.returncode, p.stderr.decode()[-500:]))
    err = p.stderr.decode()
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", err)
    u = re.search(r"User time \(seconds\):\s*([0-9.]+)", err)
    s = re.search(r"System time \(seconds\):\s*([0-9.]+)", err)
    if not (m and u and s):
        raise StepError("no maximum resident set size or CPU times in /usr/bin/time -v output")
    return int(m.group(1)), wall, float(u.group(1)) + float(s.group(1)), p.stdout


def run_cmd(argv, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode != 0:
        raise StepError("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.decode()[-500:]))
    return p


def retrying(what, fn, tries):
    """Endpoints still being finished may fail now and work a few minutes later: retry the whole step."""
    for attempt in range(1, tries + 1):
        try:
            return fn()
        except (StepError, requests.RequestException) as e:
            if attempt == tries:
                raise
            log("%s failed (%s); retrying in 60 s (%d/%d)" % (what, str(e)[:300], attempt, tries))
            time.sleep(60)


def bench_create(st, content_drive, out_drive, content_dir, scratch, runs):
    zip_out = os.path.join(scratch, "anchor.zip")
    t_ib, t_zip, reply = [], [], None
    for i in range(runs):
        dt, r = timed(lambda: st.post("/api/v1/solution/create",
                                      {"content_folder": content_drive, "output_folder": out_drive}), True)
        reply = ok(r, "solution/create")
        t_ib.append(dt)
        if os.path.exists(zip_out):
            os.unlink(zip_out)  # zip -r would otherwise update the old archive
        dt, _ = timed(lambda: run_cmd(["zip", "-r", "-q", "-X", "-6", zip_out, "."], cwd=content_dir), True)
        t_zip.append(dt)
        log("create run %d: ibsol %.2f s, zip %.2f s" % (i + 1, t_ib[-1], t_zip[-1]))
    return {"ib": t_ib, "anchor": t_zip, "ib_size": reply["size"], "zip_size": os.path.getsize(zip_out),
            "reply": reply}


def bench_install(st, pkg_host_path, scratch, runs):
    t_ib, t_unzip = [], []
    dst = os.path.join(scratch, "unzipped")
    body = {"name": SOL_NAME, "version": SOL_VERSION}
    inst = os.path.join(st.data, "installed", SOL_NAME, SOL_VERSION)
    for i in range(runs):
        if os.path.isdir(inst):
            ok(st.post("/api/v1/marketplace/uninstall", body), "marketplace/uninstall")
        dt, r = timed(lambda: st.post("/api/v1/marketplace/install", body), True)
        ok(r, "marketplace/install")
        if not os.path.isdir(inst):
            raise StepError("marketplace/install answered OK but %s is missing" % inst)
        t_ib.append(dt)
        ok(st.post("/api/v1/marketplace/uninstall", body), "marketplace/uninstall")
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(dst)
        dt, _ = timed(lambda: run_cmd(["unzip", "-q", pkg_host_path, "-d", dst]), True)
        t_unzip.append(dt)
        log("install run %d: ibsol %.2f s, unzip %.2f s" % (i + 1, t_ib[-1], t_unzip[-1]))
    shutil.rmtree(dst, ignore_errors=True)
    return {"ib": t_ib, "anchor": t_unzip}


WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def parse_wrk(text):
    def lat(pct):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, text, re.M)
        return float(m.group(1)) * WRK_UNITS[m.group(2)] if m else float("nan")

    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errs = re.search(r"Socket errors:.*", text)
    return {"rps": float(m.group(1)) if m else float("nan"), "p50": lat(50), "p99": lat(99),
            "non2xx": int(bad.group(1)) if bad else 0, "socket_errors": errs.group(0) if errs else ""}


def run_wrk(url, duration):
    p = run_cmd(["wrk", "-t2", "-c32", "-d%ds" % duration, "--latency", "--timeout", "5s",
                 "-H", "Authorization: Bearer " + TOKEN, url])
    return parse_wrk(p.stdout.decode())


def wait_port(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise StepError("bare_civetweb exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise StepError("bare_civetweb did not listen on port %d" % port)


def publish_small(st, scratch, count=5):
    for i in range(count):
        name = "bench_small_%d" % i
        for ver in ("1.0.0", "1.1.0"):
            folder = os.path.join(st.data, "drive", "admin", "bench", "small", name, ver)
            write_solution_files(folder, dict(MANIFEST, name=name, version=ver,
                                              short_description="Small benchmark solution %d" % i))
            rep = ok(st.post("/api/v1/solution/create", {"content_folder": "/admin/bench/small/%s/%s" % (name, ver),
                                                          "output_folder": "/admin/bench/small_out"}),
                     "solution/create (small)")
            ok(st.post("/api/v1/marketplace/publish", {"ibsolution_path": rep["ibsolution_path"]}),
               "marketplace/publish (small)")
        if i % 2 == 0:
            ok(st.post("/api/v1/marketplace/install", {"name": name, "version": "latest"}),
               "marketplace/install (small)")


def bench_list(st, bare_bin, scratch, duration):
    r = st.get("/marketplace/list")
    body = ok(r, "marketplace/list")
    napps = len(body.get("apps", []))
    body_file = os.path.join(scratch, "list_body.json")
    with open(body_file, "wb") as f:
        f.write(r.content)
    ib = run_wrk(st.url + "/marketplace/list", duration)
    log("wrk gateway: %.0f req/s, p50 %.2f ms, p99 %.2f ms" % (ib["rps"], ib["p50"], ib["p99"]))
    port = free_port()
    logf = open(os.path.join(scratch, "bare_civetweb.log"), "ab")
    bare_proc = subprocess.Popen([bare_bin, str(port), TOKEN, body_file], stdout=logf, stderr=subprocess.STDOUT)
    logf.close()
    try:
        wait_port(port, bare_proc)
        chk = requests.get("http://127.0.0.1:%d/marketplace/list" % port,
                           headers={"Authorization": "Bearer " + TOKEN}, timeout=5)
        if chk.status_code != 200 or chk.content != r.content:
            raise StepError("bare_civetweb answered %d with a different body" % chk.status_code)
        bare = run_wrk("http://127.0.0.1:%d/marketplace/list" % port, duration)
        log("wrk bare civetweb: %.0f req/s, p50 %.2f ms, p99 %.2f ms" % (bare["rps"], bare["p50"], bare["p99"]))
    finally:
        bare_proc.send_signal(signal.SIGTERM)
        try:
            bare_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bare_proc.kill()
            bare_proc.wait()
    return {"ib": ib, "bare": bare, "body_len": len(r.content), "apps": napps}


# ---- report ----------------------------------------------------------------------------------------------------

def remove_root(root, keep):
    """The end of every suite: its temporary folder is removed, or kept (--keep) for profiling."""
    if keep:
        log("kept %s" % root)
    else:
        shutil.rmtree(root, ignore_errors=True)


def report_head(suite, runs, load=True):
    print()
    print("ibsol %s benchmarks (%d runs each, medians; %d cores%s)" % (
        suite, runs, os.cpu_count(), "; load %.2f at the end" % os.getloadavg()[0] if load else ""))
    print("-" * 100)


def report_tail(failures):
    """Prints what could not be measured; the suite's exit code (1 when something was not)."""
    for f in failures:
        print("NOT MEASURED %s" % f)
    print("-" * 100)
    return 1 if failures else 0


def runs_of(values, fmt="%.2f"):
    return " ".join(fmt % v for v in values)


def report_wrk_errors(named):
    """named: (who, wrk result) pairs; prints those that saw non-2xx replies or socket errors."""
    for who, w in named:
        if w["non2xx"] or w["socket_errors"]:
            print("    %s: %d non-2xx replies %s" % (who, w["non2xx"], w["socket_errors"]))


def verdict(good):
    return "PASS" if good else "MISS"


def mib(n):
    return n / 2 ** 20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="release build folder (build-bench)")
    ap.add_argument("--bare", required=True, help="the bare_civetweb executable")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--tries", type=int, default=int(os.environ.get("IBSOL_BENCH_TRIES", "1")),
                    help="attempts per step when an endpoint fails (60 s apart)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (for profiling)")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, through the finally blocks that stop the daemons and remove the folders.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    root = tempfile.mkdtemp(prefix="ibsol-bench-", dir=os.environ.get("IBSOL_BENCH_TMP", "/tmp"))
    scratch = os.path.join(root, "scratch")
    os.makedirs(scratch)
    st = Stack(os.path.abspath(args.bin), root)
    results, failures = {}, []
    try:
        content_rel = "admin/bench/content"
        content_dir = os.path.join(st.data, "drive", content_rel)
        os.makedirs(content_dir)
        dt, (nfiles, nbytes) = timed(lambda: generate_content(content_dir))
        log("content: %d files, %.1f MiB in %.1f s (seed %d)" % (nfiles, mib(nbytes), dt, SEED))
        st.start()
        log("stack up at %s (data root %s)" % (st.url, st.data))

        try:
            results["create"] = retrying("solution/create", lambda: bench_create(
                st, "/" + content_rel, "/admin/bench/out", content_dir, scratch, args.runs), args.tries)
        except (StepError, requests.RequestException) as e:
            failures.append("solution/create: %s" % e)

        if "create" in results:
            rep = results["create"]["reply"]
            pkg = os.path.join(st.data, "drive", rep["ibsolution_path"].lstrip("/"))
            try:
                def publish_and_install():
                    ok(st.post("/api/v1/marketplace/publish", {"ibsolution_path": rep["ibsolution_path"]}),
                       "marketplace/publish")
                    return bench_install(st, pkg, scratch, args.runs)
                results["install"] = retrying("marketplace/install", publish_and_install, args.tries)
            except (StepError, requests.RequestException) as e:
                failures.append("marketplace/install: %s" % e)

        try:
            def list_step():
                publish_small(st, scratch)
                return bench_list(st, os.path.abspath(args.bare), scratch, args.wrk_seconds)
            results["list"] = retrying("marketplace/list", list_step, args.tries)
        except (StepError, requests.RequestException) as e:
            failures.append("marketplace/list: %s" % e)
    finally:
        st.stop()
        remove_root(root, args.keep)

    med = statistics.median
    report_head("foundation", args.runs, load=False)
    if "create" in results:
        c = results["create"]
        ratio = med(c["ib"]) / med(c["anchor"])
        print("solution/create 100MB/2000 files: ibsol %.2f s, zip -6 %.2f s, ratio %.2f (target <= 1.0) %s"
              % (med(c["ib"]), med(c["anchor"]), ratio, verdict(ratio <= 1.0)))
        print("    archive sizes: ibsol %.1f MiB (%d B), zip %.1f MiB (%d B), ibsol/zip %.3f"
              % (mib(c["ib_size"]), c["ib_size"], mib(c["zip_size"]), c["zip_size"], c["ib_size"] / c["zip_size"]))
        print("    runs: ibsol %s s; zip %s s" % (runs_of(c["ib"]), runs_of(c["anchor"])))
    if "install" in results:
        c = results["install"]
        ratio = med(c["ib"]) / med(c["anchor"])
        print("marketplace/install of that package: ibsol %.2f s, unzip %.2f s, ratio %.2f (target <= 1.0) %s"
              % (med(c["ib"]), med(c["anchor"]), ratio, verdict(ratio <= 1.0)))
        print("    runs: ibsol %s s; unzip %s s" % (runs_of(c["ib"]), runs_of(c["anchor"])))
    if "list" in results:
        c = results["list"]
        ib, bare = c["ib"], c["bare"]
        ratio = ib["rps"] / bare["rps"] if bare["rps"] else float("nan")
        print("GET /marketplace/list (wrk -t2 -c32 -d%ds, %d apps, %d-byte body): ibsol %.0f req/s, bare civetweb "
              "%.0f req/s, ratio %.2f (target >= 0.5) %s"
              % (args.wrk_seconds, c["apps"], c["body_len"], ib["rps"], bare["rps"], ratio, verdict(ratio >= 0.5)))
        print("    latency p50/p99: ibsol %.2f/%.2f ms, bare %.2f/%.2f ms"
              % (ib["p50"], ib["p99"], bare["p50"], bare["p99"]))
        report_wrk_errors((("ibsol", ib), ("bare", bare)))
    return report_tail(failures)


if __name__ == "__main__":
    sys.exit(main())
