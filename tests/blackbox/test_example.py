"""The example solution kept in docs/ works end to end on its three sample documents (text, PDF, scan), line
items included, as the README walkthrough promises; and deploy/example.sh installs it on a running stack."""
import base64
import os
import subprocess

from conftest import ADMIN_TOKEN, BIN, SOURCE

DEMO = os.path.join(SOURCE, "docs/example-solution/demo_data")
EXPECTED = {
    "invoice-1001.txt": {"invoice_no": "INV-1001", "vendor": "ACME Supplies Ltd.", "issued": "2024-03-15",
                         "due": "2024-04-14", "total": 224.98,
                         "items": [{"description": "Paper A4, 500 sheets", "qty": 10, "amount": 45},
                                   {"description": "Toner cartridge", "qty": 2, "amount": 179.98}]},
    "invoice-1002.pdf": {"invoice_no": "INV-1002", "vendor": "Northwind Traders", "issued": "2024-04-02",
                         "due": "2024-05-02", "total": 1180.5,
                         "items": [{"description": "Coffee beans, 5 kg", "qty": 3, "amount": 150},
                                   {"description": "Espresso machine", "qty": 1, "amount": 1030.5}]},
    "invoice-1003-scan.png": {"invoice_no": "INV-1003", "vendor": "Contoso Paper", "issued": "2024-06-20",
                              "due": "2024-09-20", "total": 420,
                              "items": [{"description": "Copy paper, 10 boxes", "qty": 10, "amount": 420}]},
}


def check_items(rec):
    """The line items: every cell has its box on page 1, inside the page, rows going down and cells across; the
    amounts add up to the total, so the sum_equals rule is quiet."""
    res = {r["key"]: r for r in rec["results"]}["items"]
    assert res["field_type"] == "TABLE"
    cells = res["cells"]
    assert len(cells) == len(res["value"])
    for r, row in enumerate(cells):
        assert len(row) == 3, (rec["file_name"], row)
        for c, cell in enumerate(row):
            x0, y0, x1, y1 = cell["bbox"]
            assert cell["page"] == 1 and 0 <= x0 < x1 and 0 <= y0 < y1, (rec["file_name"], r, c, cell)
            if c:
                assert x0 > row[c - 1]["bbox"][2], (rec["file_name"], r, row)
            if r:
                assert y0 >= cells[r - 1][c]["bbox"][3], (rec["file_name"], r, c, cells)
    assert abs(sum(x["amount"] for x in res["value"]) - {x["key"]: x["value"] for x in rec["results"]}["total"]) < 0.005


def test_example_script_then_run_sync_on_every_sample(stack_factory):
    s = stack_factory()
    env = dict(os.environ, IBSOL_URL=s.url, IBSOL_TOKEN=ADMIN_TOKEN)
    p = subprocess.run([os.path.join(SOURCE, "deploy/example.sh")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "invoice_demo 1.0.0 is installed" in p.stdout
    # a second run finds it installed and changes nothing
    p = subprocess.run([os.path.join(SOURCE, "deploy/example.sh")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and "already installed" in p.stdout, p.stdout + p.stderr
    files = [{"file_name": n, "file_content": base64.b64encode(open(os.path.join(DEMO, n), "rb").read()).decode()}
             for n in sorted(EXPECTED)]
    r = s.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": files})
    assert r.status_code == 200, r.text
    for rec in r.json()["records"]:
        got = {x["key"]: x["value"] for x in rec["results"]}
        for k, v in EXPECTED[rec["file_name"]].items():
            assert got[k] == v, (rec["file_name"], k, got)
        check_items(rec)
        assert rec["validation"] == []
    # the samples were uploaded too: solution/run on them works as the README shows
    r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0",
                                 "input_folder": "/admin/examples/invoice_demo/input"})
    assert r.status_code == 200, r.text
