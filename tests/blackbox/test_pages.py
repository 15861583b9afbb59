"""GET /api/v1/pages?path=&page=&dpi=: one page of a drive document as an image, rendered in the runner (the web
playground draws field boxes over it). PDF pages as PNG at the asked dpi, scans as they are, plain text drawn in
character cells; bounded dpi, the caller's own paths only, errors naming the field."""
import os
import struct

from conftest import ALICE_TOKEN, BOB_TOKEN, SOURCE, assert_error
from gen_docs import columns_pdf

DEMO = os.path.join(SOURCE, "docs/example-solution/demo_data")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE = "/alice/pages"


def png_size(data):
    assert data[:8] == PNG_MAGIC, data[:16]
    return struct.unpack(">II", data[16:24])


def read(name):
    with open(os.path.join(DEMO, name), "rb") as f:
        return f.read()


def pages(s, path, token=ALICE_TOKEN, **q):
    params = {"path": path}
    params.update({k: str(v) for k, v in q.items()})
    return s.get("/api/v1/pages", token=token, params=params)


def test_pdf_page_is_a_png_that_scales_with_dpi(stack):
    stack.put_file(BASE + "/invoice.pdf", read("invoice-1002.pdf"), ALICE_TOKEN)
    r = pages(stack, BASE + "/invoice.pdf")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["X-Page-Count"] == "1"
    assert r.headers["X-Page-Unit"] == "pt"
    assert float(r.headers["X-Page-Width"]) == 612 and float(r.headers["X-Page-Height"]) == 792
    assert png_size(r.content) == (850, 1100)  # letter at the default 100 dpi
    small = pages(stack, BASE + "/invoice.pdf", dpi=36)
    big = pages(stack, "alice/pages/invoice.pdf", dpi=300, page=1)  # no leading '/' is the same path
    assert small.status_code == 200 and big.status_code == 200, (small.text, big.text)
    assert png_size(small.content) == (306, 396)
    assert png_size(big.content) == (2550, 3300)
    # the page is drawn, not blank: a white page compresses to almost nothing
    assert len(big.content) > 20000


def test_pages_of_a_multipage_pdf_and_past_the_end(stack):
    with open(columns_pdf(3), "rb") as f:
        stack.put_file(BASE + "/cols.pdf", f.read(), ALICE_TOKEN)
    r = pages(stack, BASE + "/cols.pdf", page=3, dpi=72)
    assert r.status_code == 200, r.text
    assert r.headers["X-Page-Count"] == "3"
    assert png_size(r.content) == (612, 792)
    assert_error(pages(stack, BASE + "/cols.pdf", page=4), 404, "not_found",
                 "page: '/alice/pages/cols.pdf' has 3 pages, there is no page 4")


def test_bad_page_and_dpi_are_400_naming_them(stack):
    stack.put_file(BASE + "/one.pdf", read("invoice-1002.pdf"), ALICE_TOKEN)
    for dpi in ("35", "301", "abc", "-5", "100.5", ""):
        assert_error(pages(stack, BASE + "/one.pdf", dpi=dpi), 400, "bad_request",
                     "dpi: '%s' must be a whole number from 36 to 300" % dpi)
    for page in ("0", "x", "-1"):
        assert_error(pages(stack, BASE + "/one.pdf", page=page), 400, "bad_request",
                     "page: '%s' must be a whole number from 1" % page)
    assert_error(pages(stack, BASE + "/one.pdf", page=2), 404, "not_found",
                 "page: '/alice/pages/one.pdf' has 1 page, there is no page 2")


def test_scan_images_come_back_as_they_are(stack):
    scan = read("invoice-1003-scan.png")
    stack.put_file(BASE + "/scan.png", scan, ALICE_TOKEN)
    r = pages(stack, BASE + "/scan.png", dpi=300)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png"
    assert r.content == scan
    w, h = png_size(scan)
    # the page's size in points is the scan's pixels at its resolution, as the OCR reading of it assumes
    assert abs(float(r.headers["X-Page-Width"]) * float(r.headers["X-Page-Height"])) > 0
    assert abs(float(r.headers["X-Page-Width"]) / float(r.headers["X-Page-Height"]) - w / h) < 0.01
    assert_error(pages(stack, BASE + "/scan.png", page=2), 404, "not_found",
                 "page: '/alice/pages/scan.png' has 1 page, there is no page 2")


def test_text_is_drawn_in_character_cells(stack):
    text = "Invoice INV-7\n\nTotal: 12.50\fsecond page\n"
    stack.put_file(BASE + "/note.txt", text.encode(), ALICE_TOKEN)
    r = pages(stack, BASE + "/note.txt", dpi=72)
    assert r.status_code == 200, r.text
    assert r.headers["X-Page-Unit"] == "char" and r.headers["X-Page-Count"] == "2"
    cols, lines = float(r.headers["X-Page-Width"]), float(r.headers["X-Page-Height"])
    assert (cols, lines) == (13, 3)
    assert png_size(r.content) == (13 * 6, 3 * 12)  # 6 x 12 points a cell
    r2 = pages(stack, BASE + "/note.txt", dpi=144, page=2)
    assert r2.status_code == 200 and png_size(r2.content) == (11 * 12, 1 * 24)


def test_unreadable_documents_are_400_naming_the_path(stack):
    stack.put_file(BASE + "/junk.bin", bytes(range(256)) * 4, ALICE_TOKEN)
    assert_error(pages(stack, BASE + "/junk.bin"), 400, "bad_request",
                 "path: '/alice/pages/junk.bin' cannot be shown as a page: junk.bin: unsupported format")
    stack.put_file(BASE + "/broken.pdf", b"%PDF-1.4\nnot really\n", ALICE_TOKEN)
    assert_error(pages(stack, BASE + "/broken.pdf"), 400, "bad_request", "path: '/alice/pages/broken.pdf' cannot be read")
    stack.put_file(BASE + "/bad.png", PNG_MAGIC + b"garbage" * 10, ALICE_TOKEN)
    assert_error(pages(stack, BASE + "/bad.png"), 400, "bad_request",
                 "path: '/alice/pages/bad.png' cannot be read: cannot decode image")
    assert_error(pages(stack, BASE), 400, "bad_request", "path: '/alice/pages' is not a file")


def test_only_the_callers_own_paths(stack):
    stack.put_file(BASE + "/mine.pdf", read("invoice-1002.pdf"), ALICE_TOKEN)
    assert_error(pages(stack, BASE + "/mine.pdf", token=BOB_TOKEN), 403, "forbidden", "path")
    assert_error(pages(stack, "/alice/../alice/pages/mine.pdf"), 400, "bad_request", "path")
    assert_error(pages(stack, BASE + "/missing.pdf"), 404, "not_found", "path")
    assert_error(stack.get("/api/v1/pages", params={"path": BASE + "/mine.pdf"}, token=None), 401,
                 "unauthorized", "missing 'Authorization: Bearer <token>' header")
    assert_error(stack.get("/api/v1/pages", params={"page": "1"}, token=ALICE_TOKEN), 400, "bad_request",
                 "'path' is required")
    # an admin reads any user's path, as with the files API
    assert pages(stack, BASE + "/mine.pdf", token=None, dpi=36).status_code == 401
    from conftest import ADMIN_TOKEN
    assert pages(stack, BASE + "/mine.pdf", token=ADMIN_TOKEN, dpi=36).status_code == 200


def test_whoami_names_the_caller(stack):
    r = stack.get("/api/v1/whoami", token=ALICE_TOKEN)
    assert r.status_code == 200 and r.json() == {"status": "OK", "user": "alice", "role": "user"}
    assert_error(stack.get("/whoami", token="nope"), 401, "unauthorized", "unknown token")


def tiff(pages):
    """A little-endian, uncompressed 8-bit grey TIFF with one IFD per (width, height) in pages, at 144 dpi."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    ifd_offsets = []
    for w, h in pages:
        pixels_at = len(out)
        out += bytes((x * 16 + y) % 256 for y in range(h) for x in range(w))
        res_at = len(out)
        out += struct.pack("<II", 144, 1)  # the RATIONAL 144/1 both resolutions point at
        if len(out) % 2:
            out += b"\x00"
        ifd_offsets.append(len(out))
        tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                (273, 4, 1, pixels_at), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, w * h),
                (282, 5, 1, res_at), (283, 5, 1, res_at), (296, 3, 1, 2)]
        out += struct.pack("<H", len(tags))
        for tag, typ, count, value in tags:
            out += struct.pack("<HHII", tag, typ, count, value) if typ != 3 else struct.pack("<HHIHH", tag, typ, count, value, 0)
        out += b"\x00\x00\x00\x00"  # next IFD, set below
    struct.pack_into("<I", out, 4, ifd_offsets[0])
    for i in range(len(ifd_offsets) - 1):
        n = struct.unpack_from("<H", out, ifd_offsets[i])[0]
        struct.pack_into("<I", out, ifd_offsets[i] + 2 + 12 * n, ifd_offsets[i + 1])
    return bytes(out)


def test_tiff_pages_come_back_as_png(stack):
    stack.put_file(BASE + "/scan.tif", tiff([(40, 30), (20, 50)]), ALICE_TOKEN)
    r = pages(stack, BASE + "/scan.tif", page=2)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png" and r.headers["X-Page-Count"] == "2"
    assert png_size(r.content) == (20, 50)
    # 144 dpi: a pixel is half a point
    assert (float(r.headers["X-Page-Width"]), float(r.headers["X-Page-Height"])) == (10, 25)
    assert png_size(pages(stack, BASE + "/scan.tif").content) == (40, 30)
    assert_error(pages(stack, BASE + "/scan.tif", page=3), 404, "not_found",
                 "page: '/alice/pages/scan.tif' has 2 pages, there is no page 3")
