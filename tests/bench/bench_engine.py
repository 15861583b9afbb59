#!/usr/bin/python3
"""Benchmarks of the engine issue, each figure against an anchor measured side by side in the same run:

  1. `ibsol-runner --once` with a 10-field program over 200 one-to-three-page invoice PDFs
     vs  the common alternative: `pdftotext -layout` per file plus the same regular expressions in Python `re`
     (numbers and dates converted with plain Python). Target: wall-time ratio <= 0.5.
  2. Peak memory (maximum resident set size, /usr/bin/time -v) of `ibsol-runner --once` on a 500-page PDF.
     Target: under 200 MB. pdftotext -layout on the same file is printed for scale.

The invoices are seeded (invoices.py) and rendered by gen_pdf.c; both sides' values are checked against the
invoices' true values on every timed run, so the comparison is between two programs that do the same work.
Run through tests/bench/run.sh engine (it builds first). Exits 0 whether or not a target is met, 1 when a step
cannot run.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import invoices
from bench_foundation import (StepError, gnu_time, log, remove_root, report_head, report_tail, runner_binary,
                              runs_of, verdict)

SOL = "bench_engine"


def wait_quiet(max_load=3.0, max_wait=600):
    """Figures taken while others' test runs load the machine are meaningless: wait for the load to drop."""
    t0 = time.time()
    while os.getloadavg()[0] > max_load and time.time() - t0 < max_wait:
        log("load %.1f > %.1f: waiting for the machine to quieten" % (os.getloadavg()[0], max_load))
        time.sleep(20)
    return os.getloadavg()[0]


def check(what, got_by_path, truth_by_path):
    """Every document's fields equal the truth, or StepError naming the first few that do not."""
    bad = []
    for path, want in truth_by_path.items():
        d = invoices.diff(got_by_path.get(path, {}), want)
        if d:
            bad.append("%s: %s" % (os.path.basename(path), d))
    if bad:
        raise StepError("%s extracted wrong values on %d of %d files: %s" % (what, len(bad), len(truth_by_path),
                                                                           "; ".join(bad[:3])))


def once(runner, sol_dir, paths):
    p = subprocess.run([runner, "--once", sol_dir] + paths, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise StepError("ibsol-runner --once failed (%d): %s" % (p.returncode, p.stderr.decode()[-500:]))
    return p.stdout


def once_fields(out, paths):
    recs = json.loads(out)["records"]
    if len(recs) != len(paths):
        raise StepError("--once gave %d records for %d files" % (len(recs), len(paths)))
    return {paths[r["file_index"]]: invoices.record_fields(r) for r in recs}


def bench_files(runner, sol_dir, docs, runs):
    paths = [p for p, _ in docs]
    truth = dict(docs)
    # Warm both sides once (page cache, shared libraries, fontconfig caches), untimed, and check them.
    check("ibsol-runner --once", once_fields(once(runner, sol_dir, paths), paths), truth)
    check("pdftotext + re", invoices.alternative(paths), truth)
    t_ib, t_alt = [], []
    for i in range(runs):
        t0 = time.perf_counter()
        out = once(runner, sol_dir, paths)
        t_ib.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        alt = invoices.alternative(paths)
        t_alt.append(time.perf_counter() - t0)
        check("ibsol-runner --once", once_fields(out, paths), truth)
        check("pdftotext + re", alt, truth)
        log("files run %d: ibsol --once %.2f s, pdftotext+re %.2f s" % (i + 1, t_ib[-1], t_alt[-1]))
    return {"ib": t_ib, "anchor": t_alt}


def bench_memory(runner, sol_dir, gen, scratch, pages, runs):
    path = os.path.join(scratch, "long-%d.pdf" % pages)
    truth, npages = invoices.generate_long(gen, path, pages)
    rss, walls, alt_rss = [], [], []
    for i in range(runs):
        kb, wall, _, out = gnu_time([runner, "--once", sol_dir, path])
        check("ibsol-runner --once (%d pages)" % npages, once_fields(out, [path]), {path: truth})
        rss.append(kb)
        walls.append(wall)
        kb, _, _, _ = gnu_time(["pdftotext", "-layout", path, os.devnull])
        alt_rss.append(kb)
        log("memory run %d: ibsol --once %.1f MiB in %.2f s; pdftotext %.1f MiB"
            % (i + 1, rss[-1] / 1024, wall, alt_rss[-1] / 1024))
    return {"rss_kb": rss, "wall": walls, "alt_rss_kb": alt_rss, "pages": npages,
            "bytes": os.path.getsize(path)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="release build folder (build-bench)")
    ap.add_argument("--gen", required=True, help="the gen_pdf executable")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--cache", help="folder of generated invoices shared with bench_runner.py (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (for profiling)")
    # run.sh passes its options to every suite; these two have no use here.
    ap.add_argument("--wrk-seconds", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tries", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runner = runner_binary(args.bin)
    if not runner:
        return 1

    root = tempfile.mkdtemp(prefix="ibsol-bench-engine-", dir=os.environ.get("IBSOL_BENCH_TMP", "/tmp"))
    cache = args.cache or os.path.join(root, "invoices")
    sol_dir = os.path.join(root, SOL)
    invoices.write_solution(sol_dir, SOL, "1.0.0", invoices.REFINER10)
    results, failures = {}, []
    try:
        t0 = time.time()
        docs = invoices.generate(args.gen, cache, args.files)
        npages = [n for _, _, n in docs]
        docs = [(p, t) for p, t, _ in docs]
        log("%d invoices, %d pages (%s one/two/three-page) in %.1f s (seed %d)"
            % (len(docs), sum(npages), "/".join(str(npages.count(k)) for k in (1, 2, 3)), time.time() - t0,
               invoices.SEED))
        load = wait_quiet()
        log("load %.2f" % load)
        try:
            results["files"] = bench_files(runner, sol_dir, docs, args.runs)
            results["files"]["pages"] = sum(npages)
        except StepError as e:
            failures.append("--once over %d PDFs: %s" % (args.files, e))
        try:
            results["memory"] = bench_memory(runner, sol_dir, args.gen, root, args.pages, args.runs)
        except (StepError, RuntimeError) as e:
            failures.append("--once on a %d-page PDF: %s" % (args.pages, e))
    finally:
        remove_root(root, args.keep)

    med = statistics.median
    report_head("engine", args.runs)
    if "files" in results:
        c = results["files"]
        ratio = med(c["ib"]) / med(c["anchor"])
        print("--once, 10 fields, %d PDFs (%d pages): ibsol %.2f s, pdftotext -layout + re %.2f s, ratio %.2f "
              "(target <= 0.5) %s" % (args.files, c["pages"], med(c["ib"]), med(c["anchor"]), ratio,
                                      verdict(ratio <= 0.5)))
        print("    per file: ibsol %.1f ms, pdftotext + re %.1f ms; values checked against the truth on every run"
              % (1e3 * med(c["ib"]) / args.files, 1e3 * med(c["anchor"]) / args.files))
        print("    runs: ibsol %s s; anchor %s s" % (runs_of(c["ib"]), runs_of(c["anchor"])))
    if "memory" in results:
        c = results["memory"]
        rss = med(c["rss_kb"]) / 1024
        print("--once peak memory, %d-page PDF (%.1f MiB): max RSS %.1f MiB (target < 200 MB) %s; "
              "%.2f s; pdftotext -layout %.1f MiB" % (c["pages"], c["bytes"] / 2 ** 20, rss,
                                                      verdict(med(c["rss_kb"]) * 1024 < 200e6), med(c["wall"]),
                                                      med(c["alt_rss_kb"]) / 1024))
    return report_tail(failures)


if __name__ == "__main__":
    sys.exit(main())
