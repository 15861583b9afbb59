#!/usr/bin/python3
"""Benchmark of line items (issue 10), against an anchor measured side by side in the same run:
  `ibsol-runner --once` over 1,000 one-to-three-page invoice PDFs with the 10-field header program plus a TABLE
  field reading every item row (table() over the pages, the header repeated on continued pages, typed Qty and
  Amount columns) and two fields over it (count, sum)   vs  the same run with the header-only program.
  Target: line items cost at most 1.3 x the header-only run, in CPU time (user + system) of the process: on a
  machine other work shares, wall time swings with their load (the same run took 3 to 18 s while others
  compiled), CPU time much less; the wall-time ratio is printed too. Peak memory (maximum resident set size)
  of both runs is printed beside it.
Every run is checked: the header fields against the invoices' true values, and the rows: as many as the invoice
has items, and the Amount column adding up to the subtotal.
Run: tests/bench/bench_tables.py --bin BUILD --gen GEN_PDF (a release build folder with runner/ibsol-runner, and
the gen_pdf executable that tests/bench/run.sh builds). Exits 0 whether or not the target is met, 1 when a step
cannot run.
"""
import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time

import invoices
from bench_foundation import (StepError, gnu_time, log, remove_root, report_head, report_tail, runner_binary, runs_of,
                              verdict)

ITEMS = [
    {"name": "items", "type": "TABLE", "columns": {"Qty": "INT", "Amount": "FLOAT"},
     "formula": "table(INPUT_COL, ['Qty', 'SKU', 'Description', 'Unit Price', 'Amount'], '^Subtotal:')"},
    {"name": "rows", "type": "INT", "formula": "count(items)"},
    {"name": "items_sum", "type": "FLOAT", "formula": "sum(column(items, 'Amount'))"},
]


def timed(runner, sol_dir, paths):
    """Wall time, CPU time (user + system), max RSS (KiB) and output of one --once run, from GNU time -v."""
    kb, wall, cpu, out = gnu_time([runner, "--once", sol_dir] + paths)
    return wall, cpu, kb, out


def check(out, docs, with_items):
    recs = json.loads(out)["records"]
    if len(recs) != len(docs):
        raise StepError("--once gave %d records for %d files" % (len(recs), len(docs)))
    bad = []
    for r in recs:
        path, truth = docs[r["file_index"]]
        got = invoices.record_fields(r)
        d = invoices.diff({k: v for k, v in got.items() if k in truth}, truth)
        if with_items and not d:
            if got.get("rows") != truth["item_count"]:
                d = "%s rows, %d items" % (got.get("rows"), truth["item_count"])
            elif abs((got.get("items_sum") or 0) - truth["subtotal"]) > 0.005:
                d = "Amount adds up to %s, subtotal %s" % (got.get("items_sum"), truth["subtotal"])
        if d:
            bad.append("%s: %s" % (os.path.basename(path), d))
    if bad:
        raise StepError("wrong values on %d of %d files: %s" % (len(bad), len(docs), "; ".join(bad[:3])))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="release build folder")
    ap.add_argument("--gen", required=True, help="the gen_pdf executable")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--cache", help="folder of generated invoices (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    # tests/bench/run.sh gives every suite the options it was given: the other suites' are taken and unused
    ap.add_argument("--wrk-seconds", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tries", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pages", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runner = runner_binary(args.bin)
    if not runner:
        return 1
    root = tempfile.mkdtemp(prefix="ibsol-bench-tables-", dir=os.environ.get("IBSOL_BENCH_TMP", "/tmp"))
    cache = args.cache or os.path.join(root, "invoices")
    head_dir, items_dir = os.path.join(root, "header_only"), os.path.join(root, "line_items")
    invoices.write_solution(head_dir, "bench_header", "1.0.0", invoices.REFINER10)
    invoices.write_solution(items_dir, "bench_items", "1.0.0",
                            {"fields": invoices.REFINER10["fields"] + ITEMS})
    failures, t_head, t_items, m_head, m_items, c_head, c_items = [], [], [], [], [], [], []
    try:
        t0 = time.time()
        made = invoices.generate(args.gen, cache, args.files)
        docs = [(p, t) for p, t, _ in made]
        paths = [p for p, _ in docs]
        log("%d invoices, %d pages, %d items in %.1f s (seed %d)" % (
            len(docs), sum(n for _, _, n in made), sum(t["item_count"] for _, t in docs), time.time() - t0,
            invoices.SEED))
        # warm (page cache, libraries) and check both, untimed
        check(timed(runner, head_dir, paths)[3], docs, False)
        check(timed(runner, items_dir, paths)[3], docs, True)
        for i in range(args.runs):  # alternating, so a load change hits both sides alike
            w, cpu, kb, out = timed(runner, head_dir, paths)
            check(out, docs, False)
            t_head.append(w)
            c_head.append(cpu)
            m_head.append(kb)
            w, cpu, kb, out = timed(runner, items_dir, paths)
            check(out, docs, True)
            t_items.append(w)
            c_items.append(cpu)
            m_items.append(kb)
            log("run %d: header only %.2f s (CPU %.2f s, %.1f MiB), with line items %.2f s (CPU %.2f s, %.1f MiB)"
                % (i + 1, t_head[-1], c_head[-1], m_head[-1] / 1024, t_items[-1], c_items[-1], m_items[-1] / 1024))
    except (StepError, RuntimeError) as e:
        failures.append("--once over %d PDFs: %s" % (args.files, e))
    finally:
        remove_root(root, args.keep)
    med = statistics.median
    report_head("tables", args.runs)
    if t_head and t_items:
        ratio = med(c_items) / med(c_head)
        print("--once, %d PDFs, CPU time: with line items %.2f s, header only %.2f s, ratio %.2f (target <= 1.3) %s"
              % (args.files, med(c_items), med(c_head), ratio, verdict(ratio <= 1.3)))
        print("    wall time: with line items %.2f s, header only %.2f s, ratio %.2f"
              % (med(t_items), med(t_head), med(t_items) / med(t_head)))
        print("    peak memory (max RSS): with line items %.1f MiB, header only %.1f MiB; rows checked against "
              "the invoices' items and subtotal on every run" % (med(m_items) / 1024, med(m_head) / 1024))
        print("    runs, CPU: line items %s s; header only %s s" % (runs_of(c_items), runs_of(c_head)))
        print("    runs, wall: line items %s s; header only %s s" % (runs_of(t_items), runs_of(t_head)))
    return report_tail(failures)


if __name__ == "__main__":
    sys.exit(main())
