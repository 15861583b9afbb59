"""solution/create as a user meets it: a content folder on the drive becomes a reproducible .ibsolution, and
every bad input is a clear error that leaves nothing behind."""
import hashlib
import io
import json
import os
import time
import zipfile

import pytest

from conftest import ALICE_TOKEN, BOB_TOKEN, assert_error

MANIFEST = {"name": "invoice_demo", "version": "1.2.3", "short_description": "Invoices",
            "authors": ["Jay Doe"], "industry": "Finance", "x_custom": {"kept": True}}
FLOW = {"steps": [{"type": "process_files"},
                  {"type": "apply_refiner", "program": "refiners/main.ibrefiner"}]}
REFINER = {"fields": [{"name": "total", "formula": "regex(INPUT_COL, 'Total:\\s*([0-9.,]+)')", "type": "FLOAT"},
                      {"name": "vendor", "formula": "clean(scan_right(INPUT_COL, 'Vendor:'))"}]}


def write_content(stack, user, folder, manifest=MANIFEST, flow=FLOW, refiner=REFINER, extra=None):
    """Puts a content folder straight onto the drive (as the files API would)."""
    root = os.path.join(stack.data, "drive", user, folder)
    os.makedirs(os.path.join(root, "refiners"), exist_ok=True)
    os.makedirs(os.path.join(root, "demo_data"), exist_ok=True)
    def text(v):
        return v if v is None or isinstance(v, (bytes, str)) else json.dumps(v)

    files = {
        "package.json": text(manifest),
        "flow.json": text(flow),
        "refiners/main.ibrefiner": text(refiner),
        "README.md": "# Invoice demo\n",
        "demo_data/a.txt": "Vendor: ACME Corp\nTotal: 1,234.56\n",
    }
    files.update(extra or {})
    for rel, content in files.items():
        if content is None:
            continue
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
    return "/%s/%s" % (user, folder)


def create(stack, content, out, token=None):
    kw = {} if token is None else {"token": token}
    return stack.post("/api/v1/solution/create", {"content_folder": content, "output_folder": out}, **kw)


def test_create_writes_a_reproducible_package(stack):
    content = write_content(stack, "admin", "fs/Instabase Drive/sol")
    r = create(stack, content, "/admin/fs/Instabase Drive/out")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "OK"
    assert body["ibsolution_path"] == "/admin/fs/Instabase Drive/out/invoice_demo-1.2.3.ibsolution"
    disk = os.path.join(stack.data, "drive", body["ibsolution_path"].lstrip("/"))
    data = open(disk, "rb").read()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size"] == len(data)
    z = zipfile.ZipFile(io.BytesIO(data))
    names = z.namelist()
    assert names == sorted(names)
    assert not [n for n in names if n.endswith("/")]
    assert set(names) == {"README.md", "demo_data/a.txt", "flow.json", "invoice_demo.ibflowbin", "package.json",
                          "refiners/main.ibrefiner"}
    assert json.loads(z.read("package.json"))["x_custom"] == {"kept": True}
    for info in z.infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644
    # The same content again, with every mtime changed: the same bytes.
    time.sleep(1.1)
    for dirpath, _, files in os.walk(os.path.join(stack.data, "drive/admin/fs/Instabase Drive/sol")):
        for fn in files:
            os.utime(os.path.join(dirpath, fn))
    r2 = create(stack, content, "/admin/fs/Instabase Drive/out")
    assert r2.status_code == 200, r2.text
    assert r2.json()["sha256"] == body["sha256"]
    assert open(disk, "rb").read() == data
    # no temporary files are left next to it
    assert os.listdir(os.path.dirname(disk)) == ["invoice_demo-1.2.3.ibsolution"]


def test_output_inside_content_is_not_packaged_into_itself(stack):
    content = write_content(stack, "admin", "selfsol")
    r1 = create(stack, content, content)
    assert r1.status_code == 200, r1.text
    r2 = create(stack, content, content)
    assert r2.json()["sha256"] == r1.json()["sha256"]


def test_user_packages_own_folder_only(stack):
    content = write_content(stack, "alice", "sol")
    r = create(stack, content, "/alice/out", token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    r = create(stack, content, "/bob/out", token=BOB_TOKEN)
    assert_error(r, 403, "forbidden", "content_folder: '/alice/sol' belongs to another user")
    r = create(stack, "/bob/sol", "/alice/out", token=ALICE_TOKEN)
    assert_error(r, 403, "forbidden", "content_folder: '/bob/sol' belongs to another user")


@pytest.mark.parametrize("path,fragment", [
    ("/admin/a/../b", "has a '..' segment"),
    ("/admin//b", "has an empty segment"),
    ("/admin/./b", "has a '.' segment"),
])
def test_bad_paths(stack, path, fragment):
    r = create(stack, path, "/admin/out")
    assert_error(r, 400, "bad_request", "content_folder: path '%s' %s" % (path, fragment))


def test_symlink_out_of_the_drive(stack):
    os.makedirs(os.path.join(stack.data, "drive/admin"), exist_ok=True)
    link = os.path.join(stack.data, "drive/admin/escape")
    if not os.path.islink(link):
        os.symlink("/etc", link)
    r = create(stack, "/admin/escape", "/admin/out")
    assert_error(r, 403, "forbidden", "content_folder: '/admin/escape' leaves the drive")


def test_content_folder_missing(stack):
    r = create(stack, "/admin/does/not/exist", "/admin/out")
    assert_error(r, 404, "not_found", "content_folder: '/admin/does/not/exist' does not exist")


def test_no_package_json(stack):
    content = write_content(stack, "admin", "nopkg", manifest=None)
    r = create(stack, content, "/admin/out")
    assert_error(r, 400, "bad_request", "content_folder '/admin/nopkg' has no package.json")


def test_package_json_invalid(stack):
    content = write_content(stack, "admin", "badjson", manifest='{"name": "x",')
    r = create(stack, content, "/admin/out")
    assert_error(r, 400, "bad_request", "package.json: invalid JSON")


@pytest.mark.parametrize("change,fragment", [
    ({"name": None}, "'name'"),
    ({"version": None}, "'version'"),
    ({"version": "1.0"}, "'version' \"1.0\" is not a semantic version"),
    ({"name": "../evil"}, "'name'"),
    ({"name": "has space "}, "'name' 'has space ' is not a solution name: it ends with a space"),
])
def test_manifest_fields(stack, change, fragment):
    m = dict(MANIFEST)
    for k, v in change.items():
        if v is None:
            m.pop(k)
        else:
            m[k] = v
    content = write_content(stack, "admin", "m%d" % abs(hash(json.dumps(change))), manifest=m)
    r = create(stack, content, "/admin/out")
    body = assert_error(r, 400, "bad_request", "package.json", fragment)


def test_unknown_step(stack):
    flow = {"steps": [{"type": "process_files"}, {"type": "spilt", "by": "page"},
                      {"type": "apply_refiner", "program": "refiners/main.ibrefiner"}]}
    content = write_content(stack, "admin", "badstep", flow=flow)
    r = create(stack, content, "/admin/out")
    assert_error(r, 400, "bad_request", "flow.json", "unknown step type 'spilt'")


def test_missing_refiner_file(stack):
    flow = {"steps": [{"type": "process_files"}, {"type": "apply_refiner", "program": "refiners/nope.ibrefiner"}]}
    content = write_content(stack, "admin", "noref", flow=flow)
    r = create(stack, content, "/admin/out")
    assert_error(r, 400, "bad_request", "refiners/nope.ibrefiner", "does not exist")


def test_refiner_escaping_the_content_folder(stack):
    flow = {"steps": [{"type": "process_files"}, {"type": "apply_refiner", "program": "../secret.ibrefiner"}]}
    content = write_content(stack, "admin", "escref", flow=flow)
    with open(os.path.join(stack.data, "drive/admin/secret.ibrefiner"), "w") as f:
        json.dump(REFINER, f)
    r = create(stack, content, "/admin/out")
    assert_error(r, 400, "bad_request", "../secret.ibrefiner")


def test_output_folder_is_a_file(stack):
    content = write_content(stack, "admin", "okcontent")
    os.makedirs(os.path.join(stack.data, "drive/admin/files"), exist_ok=True)
    with open(os.path.join(stack.data, "drive/admin/files/plain"), "w") as f:
        f.write("x")
    r = create(stack, content, "/admin/files/plain")
    assert_error(r, 400, "bad_request", "output_folder '/admin/files/plain' is a file, not a folder")


def test_daemon_still_up_after_bad_requests(stack):
    assert stack.get("/healthz", token=None).status_code == 200


def test_example_solution_packages(stack):
    """The solution kept in docs/ (used by the README walkthrough) compiles and packages."""
    import shutil
    from conftest import SOURCE
    dst = os.path.join(stack.data, "drive/admin/example")
    shutil.copytree(os.path.join(SOURCE, "docs/example-solution"), dst)
    r = create(stack, "/admin/example", "/admin/example-build")
    assert r.status_code == 200, r.text
    assert r.json()["ibsolution_path"] == "/admin/example-build/invoice_demo-1.0.0.ibsolution"


def test_large_package_compressed_on_several_threads_is_reproducible(stack):
    """Past a few MB the packager deflates on several threads into part archives and copies them into place:
    the result must still be one valid, reproducible archive, with no part left behind."""
    import random
    rnd = random.Random(7)
    words = ["".join(rnd.choice("abcdefghijklmnop") for _ in range(rnd.randint(2, 9))) for _ in range(400)]
    extra = {"data/%d/f%02d.txt" % (i % 3, i): " ".join(rnd.choice(words) for _ in range(rnd.randint(20000, 40000)))
             for i in range(30)}
    content = write_content(stack, "admin", "bigsol", extra=extra)
    r1 = create(stack, content, "/admin/bigout")
    assert r1.status_code == 200, r1.text
    disk = os.path.join(stack.data, "drive/admin/bigout/invoice_demo-1.2.3.ibsolution")
    first = open(disk, "rb").read()
    assert len(first) > 1 << 20
    r2 = create(stack, content, "/admin/bigout")
    assert r2.json()["sha256"] == r1.json()["sha256"] == hashlib.sha256(first).hexdigest()
    assert os.listdir(os.path.dirname(disk)) == ["invoice_demo-1.2.3.ibsolution"]
    z = zipfile.ZipFile(io.BytesIO(first))
    assert z.testzip() is None
    names = z.namelist()
    assert names == sorted(names)
    for rel, text in extra.items():
        assert z.read(rel).decode() == text
