"""Black-box runs of `ibsol-runner --once SOLUTION FILE...` on the fixture solution: every field value of the
text and PDF invoices, split/classify on a batch, an unreadable file, runtime config, the output folder, and a
bad solution. IBSOL_ONCE_BIN may name another binary that accepts the same arguments."""
import json
import os
import subprocess

import pytest

BIN = os.environ.get("IBSOL_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("IBSOL_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
RUNNER = os.environ.get("IBSOL_ONCE_BIN", os.path.join(BIN, "runner", "ibsol-runner"))
SOLUTION = os.path.join(SOURCE, "tests", "fixtures", "solutions", "invoice")
DOCS = os.path.join(SOURCE, "tests", "fixtures", "docs")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def once(*args, rc=0):
    env = dict(os.environ, OMP_THREAD_LIMIT="1", ASAN_OPTIONS="detect_leaks=1")
    p = subprocess.run([RUNNER, "--once", *args], capture_output=True, text=True, timeout=120, env=env)
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    assert p.returncode == rc, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else p.stderr


def values(record):
    return {r["key"]: r["value"] for r in record["results"]}


TEXT_INVOICE = {
    "vendor": "ACME Corporation",
    "invoice_no": "INV-2024-001",
    "invoice_date": "2024-03-15",
    "customer": "John Smith",
    "first_name": "John",
    "last_name": "Smith",
    "bill_to": "Jane Doe",
    "due_date": "2024-03-30",
    "subtotal": 1244.5,
    "total": 1344.06,
    "paid": True,
    "items": ["Widget", "Gadget"],
    "currency": "USD",
    "source": "invoice.txt:invoice",
}

PDF_INVOICE = {
    "vendor": "Globex Industries",
    "invoice_no": "GX-7731",
    "invoice_date": "2024-04-15",
    "customer": "Marge Bouvier",
    "first_name": "Marge",
    "last_name": "Bouvier",
    "bill_to": "Springfield Nuclear Plant",
    "due_date": "2024-05-15",
    "subtotal": 3001,
    "total": 3241.08,
    "paid": False,
    "items": ["Turbine", "Rods"],
    "currency": "USD",
    "source": "invoice.pdf:invoice",
}


@pytest.fixture(scope="module", autouse=True)
def runner_exists():
    if not os.path.exists(RUNNER):
        pytest.fail("no runner binary at %s (build it, or set IBSOL_BIN / IBSOL_ONCE_BIN)" % RUNNER)


def test_text_invoice_every_field():
    out = once(SOLUTION, os.path.join(DOCS, "invoice.txt"))
    assert list(out) == ["records"]
    (rec,) = out["records"]
    assert rec["file_name"] == "invoice.txt"
    assert rec["file_index"] == 0 and rec["record_index"] == 0
    assert rec["class"] == "invoice"
    assert rec["output_file_path"] == "s5_validate/invoice.txt_0.ibdoc"
    assert values(rec) == TEXT_INVOICE
    assert [r["key"] for r in rec["results"]] == list(TEXT_INVOICE)  # declaration order
    types = {r["key"]: r["field_type"] for r in rec["results"]}
    assert types["total"] == "FLOAT" and types["due_date"] == "DATE" and types["paid"] == "BOOL"
    assert types["items"] == "LIST" and types["vendor"] == "TEXT"
    total = next(r for r in rec["results"] if r["key"] == "total")
    assert total["page"] == 1 and total["bbox"] == [7, 17, 16, 18]
    assert rec["validation"] == []


def test_pdf_invoice_every_field():
    out = once(SOLUTION, os.path.join(DOCS, "invoice.pdf"))
    (rec,) = out["records"]
    assert values(rec) == dict(PDF_INVOICE)
    last = next(r for r in rec["results"] if r["key"] == "last_name")
    assert last["page"] == 1
    x0, y0, x1, y1 = last["bbox"]
    assert 360 <= x0 < x1 <= 420 and 140 < y0 < y1 < 170  # PDF points, origin top-left


def test_batch_split_classify_config_and_bad_file():
    out = once(SOLUTION, os.path.join(DOCS, "batch.txt"), os.path.join(DOCS, "corrupt.png"),
               os.path.join(DOCS, "invoice.txt"), "--config", "currency=EUR", rc=1)  # a file failed
    recs = out["records"]
    assert [(r["file_index"], r["record_index"]) for r in recs] == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0)]
    a, receipt, b, bad, inv = recs
    assert [a["class"], receipt["class"], b["class"]] == ["invoice", "receipt", "invoice"]
    va, vr, vb = values(a), values(receipt), values(b)
    assert (va["invoice_no"], va["customer"], va["total"], va["paid"], va["currency"]) == ("A-100", "Ann Lee", 10, True, "EUR")
    assert vr == {"title": "RECEIPT", "total": 5, "invoice_no": "R-7"}
    assert (vb["invoice_no"], vb["total"], vb["paid"], vb["first_name"]) == ("B-200", 1234.5, False, None)
    assert "results" not in bad and "corrupt.png" in bad["error"]
    assert bad["file_name"] == "corrupt.png"
    assert values(inv)["currency"] == "EUR"


def test_a_failed_file_fails_the_run():
    # the records are still printed, and stderr names the file that failed: scripts and CI see the failure
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    p = subprocess.run([RUNNER, "--once", SOLUTION, os.path.join(DOCS, "invoice.txt"), os.path.join(DOCS, "corrupt.png")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 1, p.stderr
    assert p.stderr == "ibsol-runner: corrupt.png: unsupported format\n"
    recs = json.loads(p.stdout)["records"]
    assert values(recs[0]) == TEXT_INVOICE and recs[1]["error"] == "corrupt.png: unsupported format"


def test_output_folder(tmp_path):
    out_dir = tmp_path / "out"
    out = once(SOLUTION, os.path.join(DOCS, "batch.txt"), "--out", str(out_dir))
    assert out["records"][2]["output_file_path"] == str(out_dir / "s5_validate" / "batch.txt_2.ibdoc")
    names = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    assert names == ["batch.ibflowresults", "s1_process_files/batch.txt.ibdoc"] + [
        "s%d_%s/batch.txt_%d.ibdoc" % (n, step, i)
        for n, step in [(2, "split"), (3, "classify"), (4, "apply_refiner"), (5, "validate")] for i in range(3)]
    batch = json.loads((out_dir / "batch.ibflowresults").read_text())
    assert batch["job_id"] == "once" and batch["binary_path"] == SOLUTION
    assert [len(f["records"]) for f in batch["results"]] == [3]
    doc = json.loads((out_dir / "s5_validate" / "batch.txt_1.ibdoc").read_text())
    assert doc["class"] == "receipt" and doc["text"].startswith("RECEIPT")
    words = doc["pages"][0]["words"]
    # a split record keeps its lines' coordinates on the original page (line 6 of batch.txt)
    assert words[0]["text"] == "RECEIPT" and words[0]["bbox"] == [0, 5, 7, 6]
    assert {r["key"]: r["value"] for r in doc["results"]}["invoice_no"] == "R-7"


def test_bad_solution_and_usage(tmp_path):
    (tmp_path / "refiners").mkdir()
    (tmp_path / "flow.json").write_text(
        '{"steps": [{"type": "process_files"}, {"type": "apply_refiner", "program": "refiners/x.ibrefiner"}]}')
    (tmp_path / "refiners" / "x.ibrefiner").write_text(
        '{"fields": [{"name": "total", "formula": "number(nubmer(INPUT_COL))"}]}')
    err = once(str(tmp_path), os.path.join(DOCS, "invoice.txt"), rc=1)
    assert "refiners/x.ibrefiner: field 'total': line 1 column 8: unknown function 'nubmer'" in err
    once(SOLUTION, rc=2)
