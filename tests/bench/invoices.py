"""The engine's and the runner's benchmark documents: seeded invoices (1-3 pages, or one long one) rendered to
PDF by gen_pdf.c (cairo), the refiner programs run on them, and the common alternative they are compared with:
`pdftotext -layout` per file plus the same regular expressions in Python `re`, with straightforward Python
conversions of numbers and dates. Every generated invoice comes with its true field values, so both sides are
checked against the truth before anything is timed.
"""
import datetime
import json
import os
import random
import re
import subprocess

SEED = 20240612
PAGE_W, PAGE_H = 612, 792  # US Letter, points

# ---- the programs ----------------------------------------------------------------------------------------------

# Ten fields: regular expressions, numbers, dates (numeric and month names), scan_right on a two-column header.
REFINER10 = {"fields": [
    {"name": "invoice_no", "formula": r"regex(INPUT_COL, 'Invoice Number:\s*([A-Z0-9-]+)')"},
    {"name": "vendor", "formula": "clean(scan_right(INPUT_COL, 'Vendor:'))"},
    {"name": "customer", "formula": "clean(scan_right(INPUT_COL, 'Bill To:'))"},
    {"name": "po_number", "formula": r"regex(INPUT_COL, 'PO Number:\s*(PO-[0-9]+)')"},
    {"name": "issued", "formula": "date(scan_right(INPUT_COL, 'Invoice Date:'))", "type": "DATE"},
    {"name": "due", "formula": r"date(regex(INPUT_COL, 'Due Date:\s*([A-Z][a-z]+ [0-9]{1,2}, [0-9]{4})'))",
     "type": "DATE"},
    {"name": "subtotal", "formula": r"number(regex(INPUT_COL, 'Subtotal:\s*(\$?[0-9][0-9.,]*)'))", "type": "FLOAT"},
    {"name": "tax", "formula": r"number(regex(INPUT_COL, 'Tax \([0-9.]+%\):\s*(\$?[0-9][0-9.,]*)'))",
     "type": "FLOAT"},
    {"name": "total", "formula": r"number(regex(INPUT_COL, 'Total Due:\s*(\$?[0-9][0-9.,]*)'))", "type": "FLOAT"},
    {"name": "item_count", "formula": r"len(regex_all(INPUT_COL, 'SKU-[0-9]{6}'))", "type": "INT"},
]}

# Five of them, for run_sync.
REFINER5 = {"fields": [f for f in REFINER10["fields"]
                       if f["name"] in ("invoice_no", "vendor", "issued", "total", "item_count")]}


def flow(program="refiners/main.ibrefiner"):
    # OCR off: the documents have a text layer, and the alternative does not OCR either.
    return {"steps": [{"type": "process_files", "ocr": {"enabled": False}},
                      {"type": "apply_refiner", "program": program}]}


def write_solution(folder, name, version, refiner):
    os.makedirs(os.path.join(folder, "refiners"), exist_ok=True)
    files = {"package.json": {"name": name, "version": version, "short_description": "Benchmark invoices",
                              "authors": ["ibsol bench"], "industry": "Finance"},
             "flow.json": flow(), "refiners/main.ibrefiner": refiner}
    for rel, obj in files.items():
        with open(os.path.join(folder, rel), "w") as f:
            json.dump(obj, f, indent=2)


# ---- the common alternative ------------------------------------------------------------------------------------

RX = {
    "invoice_no": re.compile(r"Invoice Number:\s*([A-Z0-9-]+)"),
    "vendor": re.compile(r"Vendor:[ \t]*(.*?)(?: {2,}|$)", re.M),
    "customer": re.compile(r"Bill To:[ \t]*(.*?)(?: {2,}|$)", re.M),
    "po_number": re.compile(r"PO Number:\s*(PO-[0-9]+)"),
    "issued": re.compile(r"Invoice Date:[ \t]*(.*?)(?: {2,}|$)", re.M),
    "due": re.compile(r"Due Date:\s*([A-Z][a-z]+ [0-9]{1,2}, [0-9]{4})"),
    "subtotal": re.compile(r"Subtotal:\s*(\$?[0-9][0-9.,]*)"),
    "tax": re.compile(r"Tax \([0-9.]+%\):\s*(\$?[0-9][0-9.,]*)"),
    "total": re.compile(r"Total Due:\s*(\$?[0-9][0-9.,]*)"),
    "item_count": re.compile(r"SKU-[0-9]{6}"),
}


def _money(s):
    return float(s.replace("$", "").replace(",", "")) if s else None


def _date(s, fmt):
    try:
        return datetime.datetime.strptime(s.strip(), fmt).date().isoformat() if s else None
    except ValueError:
        return None


def py_extract(text, fields=None):
    """The ten fields from pdftotext -layout output, as a Python script would do it."""
    def grp(name):
        m = RX[name].search(text)
        return m.group(1) if m else None
    out = {
        "invoice_no": grp("invoice_no"),
        "vendor": " ".join(grp("vendor").split()) if grp("vendor") is not None else None,
        "customer": " ".join(grp("customer").split()) if grp("customer") is not None else None,
        "po_number": grp("po_number"),
        "issued": _date(grp("issued"), "%m/%d/%Y"),
        "due": _date(grp("due"), "%B %d, %Y"),
        "subtotal": _money(grp("subtotal")),
        "tax": _money(grp("tax")),
        "total": _money(grp("total")),
        "item_count": len(RX["item_count"].findall(text)),
    }
    return out if fields is None else {k: out[k] for k in fields}


def pdftotext(path):
    return subprocess.run(["pdftotext", "-layout", path, "-"], stdout=subprocess.PIPE, check=True).stdout.decode()


def alternative(paths):
    """The whole common alternative over a list of files: {path: fields}."""
    return {p: py_extract(pdftotext(p)) for p in paths}


# ---- comparing -------------------------------------------------------------------------------------------------

def record_fields(rec):
    return {r["key"]: r["value"] for r in rec.get("results", [])}


def same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) < 0.005
    return a == b


def diff(got, want):
    """Field names whose values differ, with both values."""
    return {k: (got.get(k), v) for k, v in want.items() if not same(got.get(k), v)}


# ---- the documents ---------------------------------------------------------------------------------------------

SYLL = ["ka", "ro", "ven", "dor", "al", "in", "vo", "to", "tal", "ne", "mar", "ket", "pro", "da", "ta", "fi",
        "le", "ex", "tra", "sum", "ma", "ry", "de", "li", "ver", "con", "pay", "ac", "or", "der", "ship", "bi",
        "tax", "re", "fund", "net", "lo", "mi", "su", "per", "nor", "vik", "sol", "ber", "gan", "tis"]
VENDOR_SUFFIX = ["Supplies Ltd.", "Corp", "GmbH", "Industries Inc.", "Trading Co.", "Logistics LLC", "S.A."]
PRODUCTS = ["bolts", "washers", "cable", "paper", "toner", "brackets", "filters", "gloves", "valves", "hinges",
            "labels", "boxes", "pallets", "screws", "tape", "fuses", "sensors", "pumps", "belts", "tubes"]
TAX_RATES = ["5", "7.5", "8", "10", "20"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

FIRST_ROW = 196      # baseline of page 1's first item row
NEXT_ROW = 110       # baseline of a continuation page's first item row
ROW = 14
LAST_ROW = 730       # no item row below this
TOTALS_ROWS = 5      # room the totals block needs after the last item


def _word(rng):
    return "".join(rng.choice(SYLL) for _ in range(rng.randint(2, 3))).capitalize()


def _money_s(cents, dollar=False):
    return ("$" if dollar else "") + "{:,}.{:02d}".format(cents // 100, cents % 100)


def _items_for(pages):
    cap1 = (LAST_ROW - FIRST_ROW) // ROW + 1
    capn = (LAST_ROW - NEXT_ROW) // ROW + 1
    if pages == 1:
        return 3, cap1 - TOTALS_ROWS
    lo = cap1 + capn * (pages - 2) + 1
    return lo, lo + capn - TOTALS_ROWS - 2


def make_invoice(rng, idx, pages=None):
    """One invoice: (truth, pages of draw commands). pages: 1-3 at random when None."""
    pages = pages or rng.choice([1, 1, 2, 3])
    lo, hi = _items_for(pages)
    nitems = rng.randint(lo, hi)
    vendor = "%s %s %s" % (_word(rng), _word(rng), rng.choice(VENDOR_SUFFIX))
    customer = "%s %s Inc." % (_word(rng), _word(rng))
    issued = datetime.date(2020, 1, 1) + datetime.timedelta(days=rng.randrange(1800))
    due = issued + datetime.timedelta(days=rng.choice([14, 30, 45, 60]))
    inv = "INV-%d-%05d" % (issued.year, rng.randrange(100000))
    po = "PO-%07d" % rng.randrange(10 ** 7)
    rate = rng.choice(TAX_RATES)
    items, subtotal = [], 0
    for _ in range(nitems):
        qty = rng.randint(1, 20)
        price = rng.randint(100, 99999)
        desc = "%s %s %s" % (_word(rng), rng.choice(PRODUCTS), rng.choice(["", "XL", "pack of 10", "grade A", "blue"]))
        items.append((qty, "SKU-%06d" % rng.randrange(10 ** 6), desc.strip(), price, qty * price))
        subtotal += qty * price
    tax = int(round(subtotal * float(rate) / 100))
    total = subtotal + tax
    truth = {"invoice_no": inv, "vendor": vendor, "customer": customer, "po_number": po,
             "issued": issued.isoformat(), "due": due.isoformat(), "subtotal": subtotal / 100, "tax": tax / 100,
             "total": total / 100, "item_count": nitems}

    def T(x, y, text, size=10, bold=0, align="L"):
        return "T %g %g %g %d %s %s" % (x, y, size, bold, align, text)

    def table_head(y):
        return [T(50, y, "Qty", 9, 1), T(80, y, "SKU", 9, 1), T(160, y, "Description", 9, 1),
                T(470, y, "Unit Price", 9, 1, "R"), T(562, y, "Amount", 9, 1, "R"), "L 50 %g 562 %g" % (y + 4, y + 4)]

    out = [[T(50, 60, "INVOICE", 20, 1), T(562, 60, "%s %s" % (_word(rng), rng.choice(["Street", "Road"])), 9, 0, "R"),
            T(50, 96, "Vendor: " + vendor), T(340, 96, "Invoice Number: " + inv),
            T(50, 112, "Bill To: " + customer), T(340, 112, "Invoice Date: " + issued.strftime("%m/%d/%Y")),
            T(50, 128, "PO Number: " + po),
            T(340, 128, "Due Date: %s %d, %d" % (MONTHS[due.month - 1], due.day, due.year)),
            T(50, 144, "Terms: net %d days, %s" % ((due - issued).days, rng.choice(["wire", "check", "card"])), 9)]
           + table_head(176)]
    y = FIRST_ROW
    for k, (qty, sku, desc, price, amount) in enumerate(items):
        if y > LAST_ROW:
            out.append([T(50, 60, "Invoice %s (continued)" % inv, 12, 1)] + table_head(90))
            y = NEXT_ROW
        out[-1] += [T(62, y, str(qty), 9, 0, "R"), T(80, y, sku, 9), T(160, y, desc, 9),
                    T(470, y, _money_s(price), 9, 0, "R"), T(562, y, _money_s(amount), 9, 0, "R")]
        y += ROW
    if y + ROW * (TOTALS_ROWS - 1) > LAST_ROW + ROW:
        out.append([T(50, 60, "Invoice %s (continued)" % inv, 12, 1)])
        y = NEXT_ROW
    y += 6
    out[-1] += ["L 380 %g 562 %g" % (y - 10, y - 10),
                T(400, y, "Subtotal:"), T(562, y, _money_s(subtotal, True), 10, 0, "R"),
                T(400, y + ROW, "Tax (%s%%):" % rate), T(562, y + ROW, _money_s(tax, True), 10, 0, "R"),
                T(400, y + 2 * ROW, "Total Due:", 10, 1), T(562, y + 2 * ROW, _money_s(total, True), 10, 1, "R")]
    n = len(out)
    for i, page in enumerate(out):
        page.insert(0, "P %d %d" % (PAGE_W, PAGE_H))
        page.append(T(306, 770, "Page %d of %d" % (i + 1, n), 8, 0, "L"))
    return truth, out


def render(gen_pdf, docs):
    """docs: [(path, pages)]; one gen_pdf process writes them all."""
    spec = []
    for path, pages in docs:
        spec.append("F " + path)
        for page in pages:
            spec.extend(page)
    p = subprocess.run([gen_pdf], input=("\n".join(spec) + "\n").encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("gen_pdf failed: %s" % p.stderr.decode()[-500:])


def generate(gen_pdf, folder, n, seed=SEED, prefix="invoice"):
    """n invoices of 1-3 pages in folder (kept when already there: the cache of one bench run).
    Returns [(path, truth, pages)] in order."""
    rng = random.Random(seed)
    os.makedirs(folder, exist_ok=True)
    made, todo = [], []
    for i in range(n):
        truth, pages = make_invoice(rng, i)
        path = os.path.join(folder, "%s-%04d.pdf" % (prefix, i))
        made.append((path, truth, len(pages)))
        if not os.path.exists(path):
            todo.append((path, pages))
    if todo:
        render(gen_pdf, todo)
    return made


def generate_long(gen_pdf, path, pages=500, seed=SEED + 1):
    """One invoice of exactly `pages` pages (its item table runs over all of them)."""
    rng = random.Random(seed)
    truth, out = make_invoice(rng, 0, pages=pages)
    if not os.path.exists(path):
        render(gen_pdf, [(path, out)])
    return truth, len(out)


def text_invoice(seed=SEED + 2, nitems=12):
    """A one-page plain-text invoice (what a text document run_sync gets) and its truth."""
    rng = random.Random(seed)
    truth, _ = make_invoice(rng, 0, pages=1)
    rng = random.Random(seed)  # the same draws again, for the lines
    t = truth
    issued = datetime.date.fromisoformat(t["issued"])
    due = datetime.date.fromisoformat(t["due"])
    lines = ["INVOICE", "",
             "Vendor: %-40s Invoice Number: %s" % (t["vendor"], t["invoice_no"]),
             "Bill To: %-39s Invoice Date: %s" % (t["customer"], issued.strftime("%m/%d/%Y")),
             "PO Number: %-37s Due Date: %s %d, %d" % (t["po_number"], MONTHS[due.month - 1], due.day, due.year),
             "", "Qty  SKU         Description                         Unit Price      Amount"]
    sub = 0
    for _ in range(nitems):
        qty, price = rng.randint(1, 20), rng.randint(100, 99999)
        sub += qty * price
        lines.append("%3d  SKU-%06d  %-34s %11s %11s" % (qty, rng.randrange(10 ** 6), "%s %s" % (
            _word(rng), rng.choice(PRODUCTS)), _money_s(price), _money_s(qty * price)))
    tax = int(round(sub * 0.08))
    lines += ["", "%60s %15s" % ("Subtotal:", _money_s(sub, True)), "%60s %15s" % ("Tax (8%):", _money_s(tax, True)),
              "%60s %15s" % ("Total Due:", _money_s(sub + tax, True)), ""]
    truth = dict(t, subtotal=sub / 100, tax=tax / 100, total=(sub + tax) / 100, item_count=nitems)
    return "\n".join(lines).encode(), truth
