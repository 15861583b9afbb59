"""Line items end to end: solution/create refuses a wrong table formula naming the file, the field and the
position; run_sync returns a TABLE field's rows with typed cells and each cell's page and box, from a text
invoice, a PDF and a scan; CSV gives one line per row with the record's other fields repeated."""
import base64
import csv
import io
import json
import os
import shutil
import time

import pytest

from conftest import SOURCE, assert_error

EXAMPLE = os.path.join(SOURCE, "docs/example-solution")
DATA = os.path.join(EXAMPLE, "demo_data")
ITEMS = {"name": "items", "type": "TABLE", "columns": {"Qty": "INT", "Amount": "FLOAT"},
         "formula": "table(INPUT_COL, ['Description', 'Qty', 'Amount'], 'Total')"}
RULE = {"field": "items", "min_rows": 1, "sum_equals": {"column": "Amount", "field": "total"},
        "columns": {"Qty": {"required": True, "type": "INT"}, "Description": {"regex": "^[A-Z]"}}}
COUNT = {"name": "n_items", "type": "INT", "formula": "count(items)"}
SUM = {"name": "items_sum", "type": "FLOAT", "formula": "sum(column(items, 'Amount'))"}


def content(stack, folder, fields, rules=()):
    """The example solution with more fields in its invoice refiner (and more validate rules), as a content
    folder of admin's. A field named like one of the example's (its own line items, 'items') replaces it, and
    the example's rules on that field go with it."""
    dst = os.path.join(stack.data, "drive/admin", folder)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(EXAMPLE, dst)
    path = os.path.join(dst, "refiners/invoice.ibrefiner")
    with open(path) as f:
        refiner = json.load(f)
    names = {f["name"] for f in fields}
    refiner["fields"] = [f for f in refiner["fields"] if f["name"] not in names] + list(fields)
    with open(path, "w") as f:
        json.dump(refiner, f)
    path = os.path.join(dst, "flow.json")
    with open(path) as f:
        flow = json.load(f)
    flow["steps"][-1]["rules"] = [r for r in flow["steps"][-1]["rules"] if r["field"] not in names] + list(rules)
    with open(path, "w") as f:
        json.dump(flow, f)
    return "/admin/" + folder


def b64(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return base64.b64encode(f.read()).decode()


@pytest.mark.parametrize("formula, where, msg", [
    ("table(INPUT_COL, '^Description(', 'Total')", "line 1 column 18",
     "table: the header: invalid regular expression: missing closing parenthesis at offset 13"),
    ("table(INPUT_COL, ['Description', 'Qty'], 12)", "line 1 column 42",
     "table: end must be a regular expression (text), not a number"),
    ("table(INPUT_COL, ['Description', 'Qty'], 'Total', '{\"columns\": [\"Price\"]}')", "line 1 column 51",
     "table: options: 'columns' names 'Price', which the header lacks"),
    ("line_items(INPUT_COL, 'Description', 'Total', '^(\\S+)\\s+(\\d+)')", "line 1 column 47",
     "line_items: the line pattern has no named group"),
])
def test_create_refuses_a_wrong_table_formula(stack, formula, where, msg):
    folder = content(stack, "bad_table", [{"name": "items", "type": "TABLE", "formula": formula}])
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": "/admin/bad_build"})
    assert_error(r, 400, "bad_request", "refiners/invoice.ibrefiner: field 'items': %s: %s" % (where, msg))


def test_create_refuses_columns_of_a_field_that_is_not_a_table(stack):
    folder = content(stack, "bad_columns", [dict(ITEMS, type="LIST")])
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": "/admin/bad_build"})
    assert_error(r, 400, "bad_request",
                 "refiners/invoice.ibrefiner: field 'items': 'columns' is only for fields of type TABLE")


@pytest.fixture(scope="module")
def installed(stack):
    folder = content(stack, "tables", [ITEMS, COUNT, SUM], [RULE])
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": "/admin/tables_build"})
    assert r.status_code == 200, r.text
    assert stack.post("/marketplace/publish", {"ibsolution_path": r.json()["ibsolution_path"]}).status_code == 200
    assert stack.post("/marketplace/install", {"name": "invoice_demo", "version": "1.0.0"}).status_code == 200


def run_sync(stack, names, **options):
    body = {"name": "invoice_demo", "version": "1.0.0",
            "files": [{"file_name": n, "file_content": b64(n)} if isinstance(n, str) else
                      {"file_name": n[0], "file_content": base64.b64encode(n[1]).decode()} for n in names]}
    if options:
        body["options"] = options
    r = stack.post("/solution/run_sync", body)
    assert r.status_code == 200, r.text
    return r


def test_run_sync_returns_line_items(stack, installed):
    records = run_sync(stack, ["invoice-1001.txt", "invoice-1002.pdf", "invoice-1003-scan.png"]).json()["records"]
    res = [{f["key"]: f for f in rec["results"]} for rec in records]
    assert res[0]["items"]["field_type"] == "TABLE"
    assert res[0]["items"]["value"] == [{"Description": "Paper A4, 500 sheets", "Qty": 10, "Amount": 45},
                                        {"Description": "Toner cartridge", "Qty": 2, "Amount": 179.98}]
    # each cell's place: character columns and lines in the text invoice (lines 7 and 8, 0-based 6 and 7)
    assert res[0]["items"]["cells"] == [
        [{"page": 1, "bbox": [0, 7, 20, 8]}, {"page": 1, "bbox": [38, 7, 40, 8]}, {"page": 1, "bbox": [56, 7, 61, 8]}],
        [{"page": 1, "bbox": [0, 8, 15, 9]}, {"page": 1, "bbox": [39, 8, 40, 9]}, {"page": 1, "bbox": [55, 8, 61, 9]}]]
    assert res[0]["n_items"]["value"] == 2 and res[0]["items_sum"]["value"] == 224.98
    assert res[1]["items"]["value"] == [{"Description": "Coffee beans, 5 kg", "Qty": 3, "Amount": 150},
                                        {"Description": "Espresso machine", "Qty": 1, "Amount": 1030.5}]
    assert res[1]["items_sum"]["value"] == res[1]["total"]["value"] == 1180.5
    # PDF boxes are in points, on the words the PDF draws
    for row in res[1]["items"]["cells"]:
        for cell in row:
            assert cell["page"] == 1 and 60 < cell["bbox"][0] < cell["bbox"][2] < 560
    assert res[2]["items"]["value"] == [{"Description": "Copy paper, 10 boxes", "Qty": 10, "Amount": 420}]
    assert res[2]["n_items"]["value"] == 1


def test_csv_has_a_line_per_row(stack, installed):
    r = run_sync(stack, ["invoice-1001.txt", "invoice-1003-scan.png"], result_format="csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    head = rows[0]
    assert head[:4] == ["file_name", "file_index", "record_index", "row_index"]
    assert head[head.index("items.Description"):head.index("items.Description") + 3] == [
        "items.Description", "items.Qty", "items.Amount"]
    lines = [dict(zip(head, row)) for row in rows[1:]]
    assert [(x["file_name"], x["row_index"], x["items.Description"], x["items.Qty"], x["items.Amount"])
            for x in lines] == [("invoice-1001.txt", "0", "Paper A4, 500 sheets", "10", "45"),
                                ("invoice-1001.txt", "1", "Toner cartridge", "2", "179.98"),
                                ("invoice-1003-scan.png", "0", "Copy paper, 10 boxes", "10", "420")]
    # the record's other fields are repeated on each of its lines
    assert [x["invoice_no"] for x in lines] == ["INV-1001", "INV-1001", "INV-1003"]
    assert lines[0]["total"] == lines[1]["total"] == "224.98"


def test_solution_run_keeps_rows_in_every_output(stack, installed):
    inp = os.path.join(stack.data, "drive/admin/tables_run/in")
    os.makedirs(inp, exist_ok=True)
    shutil.copy(os.path.join(DATA, "invoice-1002.pdf"), inp)
    r = stack.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": "/admin/tables_run/in"})
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    for _ in range(600):
        st = stack.get("/jobs/status?job_id=" + job).json()
        if st["state"] == "DONE":
            break
        time.sleep(0.1)
    assert st["state"] == "DONE", st
    want = [{"Description": "Coffee beans, 5 kg", "Qty": 3, "Amount": 150},
            {"Description": "Espresso machine", "Qty": 1, "Amount": 1030.5}]

    def items(results):
        return [f for f in results if f["key"] == "items"][0]

    rec = stack.get("/jobs/results?job_id=" + job).json()["records"][0]
    assert items(rec["results"])["value"] == want and len(items(rec["results"])["cells"]) == 2
    out = os.path.join(stack.data, "drive", st["results"][0]["output_folder"].lstrip("/"))
    with open(os.path.join(out, "batch.ibflowresults")) as f:
        batch = json.load(f)
    assert items(batch["results"][0]["records"][0]["results"])["value"] == want
    with open(os.path.join(stack.data, "drive", rec["output_file_path"].lstrip("/"))) as f:
        ibdoc = json.load(f)
    assert items(ibdoc["results"]) == items(rec["results"])


def test_validation_over_rows(stack, installed):
    good = run_sync(stack, ["invoice-1001.txt", "invoice-1002.pdf", "invoice-1003-scan.png"]).json()["records"]
    assert [rec["validation"] for rec in good] == [[], [], []]
    wrong = (b"INVOICE\nInvoice No: INV-9\n\nDescription   Qty   Amount\nwidget          2    10.00\n"
             b"Gadget               5.00\n\nTotal Due: $20.00\n")
    empty = b"INVOICE\nInvoice No: INV-10\nnothing in rows here\nTotal: 5.00\n"
    recs = run_sync(stack, [("wrong.txt", wrong), ("empty.txt", empty)]).json()["records"]
    assert [(m["field"], m["rule"], m["msg"]) for m in recs[0]["validation"]] == [
        ("items", "regex", "items: row 1, column 'Description': 'widget' does not match ^[A-Z]"),
        ("items", "required", "items: row 2, column 'Qty': required, but it is empty"),
        ("items", "sum_equals", "items: the sum of column 'Amount' is 15, but total is 20")]
    # a header never found: no rows, and a message only because a rule asks for rows
    assert [f["value"] for f in recs[1]["results"] if f["key"] == "items"] == [[]]
    assert [(m["rule"], m["msg"]) for m in recs[1]["validation"]] == [
        ("min_rows", "items: 0 rows, fewer than the minimum 1"),
        ("sum_equals", "items: the sum of column 'Amount' is 0, but total is 5")]


def test_create_refuses_sum_equals_of_a_missing_field(stack):
    folder = content(stack, "bad_rule", [ITEMS], [{"field": "items", "sum_equals": {"column": "Amount",
                                                                                 "field": "totl"}}])
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": "/admin/bad_build"})
    assert_error(r, 400, "bad_request", "flow.json: validate: rules[2]: sum_equals: field 'totl' is not a field "
                 "of any refiner program")
