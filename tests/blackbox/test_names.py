"""Names, package.json and drive paths as the original product has them (issue 9, items 1-3): solutions named
"Demo Solution" or with '&()' and non-ASCII letters go through create, publish, install, list, info, run_sync
and solution/run; refused names are a 400 naming the name and change nothing; package.json keys the original
product writes (lists, encryption_config, owner, dependencies) are checked and kept; drive paths written
without a leading '/' mean the same as with one at every entry point."""
import csv
import io
import json
import os
import shutil
import time
import urllib.parse
import zipfile

import pytest

from conftest import ADMIN_TOKEN, ALICE_TOKEN, EXAMPLE, assert_error, b64, fields
from conftest import EXAMPLE_FIELDS as EXPECTED
from conftest import EXAMPLE_INVOICE as INVOICE
RULE = ("names are 1-128 bytes of printable UTF-8 without '/' or '\\', not starting or ending with a space, "
        "not '.' or '..'")

# The seed's own example name, one with every allowed punctuation and letters outside ASCII, a dot name (kept
# in marketplace/ and installed/ under " .name", apart from the folders' dot-named temporaries), and the longest
# name, 128 bytes of two-byte letters.
NAMES = ["Demo Solution", "Smith & Sons (EU) 'Müller' 請求書", ".tmp-not a temporary", "ü" * 64]


def wait_done(stack, job_id, token=ADMIN_TOKEN, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = stack.get("/jobs/status", params={"job_id": job_id}, token=token).json()
        if body.get("state") == "DONE":
            return body
        time.sleep(0.1)
    raise AssertionError("job %s did not end: %s" % (job_id, body))


def drive(stack, path):
    return os.path.join(stack.data, "drive", path.lstrip("/"))


def content(stack, folder, **manifest):
    """The example solution copied to the drive folder, its package.json changed by `manifest`."""
    dst = drive(stack, folder)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(EXAMPLE, dst)
    with open(os.path.join(EXAMPLE, "package.json")) as f:
        pkg = json.load(f)
    pkg.update(manifest)
    with open(os.path.join(dst, "package.json"), "w") as f:
        json.dump(pkg, f, ensure_ascii=False)
    return folder


def store_state(stack):
    """Everything under marketplace/ and installed/, to tell that a refused call changed nothing."""
    found = []
    for top in ("marketplace", "installed"):
        for d, dirs, files in os.walk(os.path.join(stack.data, top)):
            found += sorted(os.path.relpath(os.path.join(d, n), stack.data) for n in dirs + files)
    return found


# ---- 1. names ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_name_end_to_end(stack, name):
    tag = "n%d" % NAMES.index(name)
    folder = content(stack, "/admin/%s/src" % tag, name=name)
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": "/admin/%s/build" % tag})
    assert r.status_code == 200, r.text
    # the archive keeps the original product's file name
    path = r.json()["ibsolution_path"]
    assert path == "/admin/%s/build/%s-1.0.0.ibsolution" % (tag, name)
    assert r.json()["name"] == name
    assert os.path.isfile(drive(stack, path))
    with zipfile.ZipFile(drive(stack, path)) as z:
        assert name + ".ibflowbin" in z.namelist()

    r = stack.post("/marketplace/publish", {"ibsolution_path": path})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name
    folder_name = (" " + name) if name.startswith(".") else name
    stored = os.path.join(stack.data, "marketplace", folder_name, "1.0.0", "%s-1.0.0.ibsolution" % name)
    assert os.path.isfile(stored)
    r = stack.post("/marketplace/install", {"name": name, "version": "latest"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "1.0.0"
    assert os.path.isfile(os.path.join(stack.data, "installed", folder_name, "1.0.0", name + ".ibflowbin"))

    apps = {a["name"]: a for a in stack.get("/marketplace/list").json()["apps"]}
    assert apps[name]["installed_versions"] == ["1.0.0"] and apps[name]["latest_version"] == "1.0.0"
    # info by query string: '+' for spaces (form encoding) and %20 mean the same, '&' and UTF-8 percent-encoded
    for query in ("name=" + urllib.parse.quote_plus(name), "name=" + urllib.parse.quote(name, safe="")):
        r = stack.get("/marketplace/info?" + query)
        assert r.status_code == 200, (query, r.text)
        assert r.json()["name"] == name and r.json()["manifest"]["name"] == name and r.json()["installed"]

    # run_sync, JSON and CSV
    r = stack.post("/api/v1/solution/run_sync", {"name": name, "version": "1.0.0", "files": [
        {"file_name": "invoice-1001.txt", "file_content": b64(INVOICE)}]})
    assert r.status_code == 200, r.text
    assert r.json()["binary_path"] == "/installed/%s/1.0.0/%s.ibflowbin" % (name, name)
    assert fields(r.json()["records"][0]) == EXPECTED
    r = stack.post("/solution/run_sync", {"name": name, "version": "latest", "options": {"result_format": "csv"},
                                          "files": [{"file_name": "a, b.txt", "file_content": b64(INVOICE)}]})
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[1][0] == "a, b.txt" and dict(zip(rows[0], rows[1]))["invoice_no"] == "INV-1001"

    # solution/run in the background: the job record and its answers carry the name
    inp = "/admin/%s/in" % tag
    os.makedirs(drive(stack, inp), exist_ok=True)
    with open(os.path.join(drive(stack, inp), "invoice-1001.txt"), "wb") as f:
        f.write(INVOICE)
    r = stack.post("/solution/run", {"name": name, "version": "1.0.0", "input_folder": inp})
    assert r.status_code == 200, r.text
    assert r.json()["solution"] == {"name": name, "version": "1.0.0"}
    st = wait_done(stack, r.json()["job_id"])
    assert st["results"][0]["status"] == "OK", st
    recs = stack.get("/jobs/results", params={"job_id": r.json()["job_id"]}).json()["records"]
    assert fields(recs[0]) == EXPECTED
    # and the unpublished archive, run by its drive path
    r = stack.post("/solution/run_sync", {"solution_path": path, "files": [
        {"file_name": "x.txt", "file_content": b64(INVOICE)}]})
    assert r.status_code == 200, r.text
    assert r.json()["binary_path"] == "%s/%s.ibflowbin" % (path, name)


BAD_NAMES = [
    ("a/b", "it holds a '/'"),
    ("../known", "it holds a '/'"),
    ("..", "it is '.' or '..'"),
    (".", "it is '.' or '..'"),
    ("bell\x07name", "it holds a control character"),
    ("x" * 129, "it is longer than 128 bytes"),
    (" Demo Solution", "it starts with a space"),
    ("Demo Solution ", "it ends with a space"),
    ("back\\slash", "it holds a '\\'"),
]


def name_msg(name, why):
    return "'name' '%s' is not a solution name: %s (%s)" % (name, why, RULE)


@pytest.mark.parametrize("name,why", BAD_NAMES)
def test_refused_names(stack, name, why):
    before = store_state(stack)
    msg = name_msg(name, why)
    for op in ("/marketplace/install", "/marketplace/uninstall", "/marketplace/unpublish"):
        body = assert_error(stack.post(op, {"name": name, "version": "1.0.0"}), 400, "bad_request")
        assert body["msg"] == msg, (op, body)
    body = assert_error(stack.get("/marketplace/info?name=" + urllib.parse.quote(name, safe="")), 400, "bad_request")
    assert body["msg"] == msg
    for op in ("/solution/run_sync", "/api/v1/solution/run_sync"):
        body = assert_error(stack.post(op, {"name": name, "version": "1.0.0", "files": [
            {"file_name": "a.txt", "file_content": b64(INVOICE)}]}), 400, "bad_request")
        assert body["msg"] == msg
    os.makedirs(drive(stack, "/admin/badname/in"), exist_ok=True)
    with open(drive(stack, "/admin/badname/in/a.txt"), "wb") as f:
        f.write(INVOICE)
    body = assert_error(stack.post("/solution/run", {"name": name, "version": "1.0.0",
                                                    "input_folder": "/admin/badname/in"}), 400, "bad_request")
    assert body["msg"] == msg
    # in package.json: solution/create refuses it and writes no archive
    folder = content(stack, "/admin/badname/src", name=name)
    out = "/admin/badname/out-%d" % [n for n, _ in BAD_NAMES].index(name)
    body = assert_error(stack.post("/solution/create", {"content_folder": folder, "output_folder": out}),
                        400, "bad_request")
    assert body["msg"] == "package.json: " + msg
    assert not os.path.exists(drive(stack, out))
    assert store_state(stack) == before
    assert stack.get("/healthz").status_code == 200


@pytest.mark.parametrize("query,msg", [
    ("name=%FF", "'name' in the query string is not valid UTF-8"),
    ("name=Demo%00Solution", "'name' in the query string holds a NUL byte (%00)"),
    ("name=" + "x" * 5000, "'name' in the query string is longer than 4095 bytes"),
    ("name=Demo+Solution&version=%C3", "'version' in the query string is not valid UTF-8"),
])
def test_refused_query_values(stack, query, msg):
    # a query value is refused as it was sent, never cut short at a NUL or taken as missing
    body = assert_error(stack.get("/marketplace/info?" + query), 400, "bad_request")
    assert body["msg"] == msg


def test_refused_name_inside_an_archive(stack):
    # an archive made elsewhere, whose package.json names a path: refused at publish, nothing stored
    before = store_state(stack)
    pkg = {"name": "../escape", "version": "1.0.0", "short_description": "d", "authors": ["a"]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("package.json", json.dumps(pkg))
    os.makedirs(drive(stack, "/admin/evil"), exist_ok=True)
    with open(drive(stack, "/admin/evil/e.ibsolution"), "wb") as f:
        f.write(buf.getvalue())
    body = assert_error(stack.post("/marketplace/publish", {"ibsolution_path": "/admin/evil/e.ibsolution"}),
                        400, "bad_request")
    assert body["msg"] == "ibsolution_path '/admin/evil/e.ibsolution': package.json: " + \
        name_msg("../escape", "it holds a '/'")
    assert store_state(stack) == before
    assert not os.path.exists(os.path.join(stack.data, "escape"))


def test_name_folders_are_never_followed_through_a_symlink(stack):
    # marketplace/<name> and installed/<name> are opened without following a symlink: a link planted in the data
    # root under a solution's name leads nowhere, even to another solution's real folder
    folder = content(stack, "/admin/linked/src", name="Real One")
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": "/admin/linked/build"})
    assert stack.post("/marketplace/publish", {"ibsolution_path": r.json()["ibsolution_path"]}).status_code == 200
    assert stack.post("/marketplace/install", {"name": "Real One", "version": "1.0.0"}).status_code == 200
    for top in ("marketplace", "installed"):
        os.symlink(os.path.join(stack.data, top, "Real One"), os.path.join(stack.data, top, "Linked One"))
    files = [{"file_name": "a.txt", "file_content": b64(INVOICE)}]
    body = assert_error(stack.post("/solution/run_sync", {"name": "Linked One", "version": "1.0.0", "files": files}),
                        404, "not_found")
    assert body["msg"] == "solution 'Linked One' version '1.0.0' is not installed"
    assert assert_error(stack.get("/marketplace/info", params={"name": "Linked One"}), 404,
                        "not_found")["msg"] == "no solution 'Linked One' is published"
    assert "Linked One" not in [a["name"] for a in stack.get("/marketplace/list").json()["apps"]]
    assert stack.post("/solution/run_sync", {"name": "Real One", "version": "1.0.0", "files": files}).status_code == 200


# ---- 2. package.json as the original product writes it --------------------------------------------------------

ORIGINAL = {
    "accelerator_type": ["solution"],
    "industry": ["Financial Services", "Insurance"],
    "business_vertical": ["Banking"],
    "use_case": ["Accounts payable"],
    "encryption_config": {"encryption_type": "none"},
    "owner": "admin",
    "visibility": "PRIVATE",
    "icon_file": "icon.png",
    "beta": False,
    "dependencies": {"models": ["my_invoice_model==0.0.5"], "dev_exchange_packages": ["my_tools==1.0.6"]},
}


def test_original_package_json_is_kept(stack):
    folder = content(stack, "/admin/orig/src", name="Original Manifest", **ORIGINAL)
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": "/admin/orig/build"})
    assert r.status_code == 200, r.text
    r = stack.post("/marketplace/publish", {"ibsolution_path": r.json()["ibsolution_path"]})
    assert r.status_code == 200, r.text
    manifest = stack.get("/marketplace/info", params={"name": "Original Manifest"}).json()["manifest"]
    for key, value in ORIGINAL.items():
        assert manifest[key] == value, key
    app = [a for a in stack.get("/marketplace/list").json()["apps"] if a["name"] == "Original Manifest"][0]
    for key, value in ORIGINAL.items():
        assert app[key] == value, key


@pytest.mark.parametrize("change,msg", [
    ({"industry": ["Finance", 7]}, "package.json: 'industry'[1] must be a string, not a number"),
    ({"accelerator_type": {"kind": "solution"}}, "package.json: 'accelerator_type' must be a list of strings, not an object"),
    ({"encryption_config": "aes"}, "package.json: 'encryption_config' must be an object, not a string"),
    ({"owner": 5}, "package.json: 'owner' must be a string, not a number"),
    ({"dependencies": {"models": ["my_model==1.0.0", "other_model"]}},
     "package.json: 'dependencies.models'[1] \"other_model\" must be \"name==version\" (e.g. \"my_model==0.0.1\")"),
    ({"dependencies": {"dev_exchange_packages": [3]}},
     "package.json: 'dependencies.dev_exchange_packages'[0] must be a string, not a number"),
])
def test_bad_package_json(stack, change, msg):
    folder = content(stack, "/admin/badpkg/src", name="Bad Manifest", **change)
    out = "/admin/badpkg/out-%d" % abs(hash(msg))
    body = assert_error(stack.post("/solution/create", {"content_folder": folder, "output_folder": out}),
                        400, "bad_request")
    assert body["msg"] == msg
    assert not os.path.exists(drive(stack, out))


# ---- 3. drive paths without a leading '/' -----------------------------------------------------------------------

def test_paths_without_leading_slash(stack):
    folder = content(stack, "/alice/my_repo/fs/Instabase Drive/noslash/src", name="No Slash")
    r = stack.post("/solution/create", {"content_folder": folder.lstrip("/"),
                                        "output_folder": "alice/my_repo/fs/Instabase Drive/noslash/build"},
                   token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    path = r.json()["ibsolution_path"]
    assert path == "/alice/my_repo/fs/Instabase Drive/noslash/build/No Slash-1.0.0.ibsolution"
    r = stack.post("/marketplace/publish", {"ibsolution_path": path.lstrip("/")})
    assert r.status_code == 200, r.text
    assert stack.post("/marketplace/install", {"name": "No Slash", "version": "1.0.0"}).status_code == 200

    # the files API: the path after the prefix never had a '/'; an upload and a listing by it
    base = "alice/my_repo/fs/Instabase Drive/noslash"
    r = stack.call("PUT", "/api/v2/files/" + urllib.parse.quote(base + "/in/invoice-1001.txt"), ALICE_TOKEN,
                   data=INVOICE)
    assert r.status_code == 204, r.text
    r = stack.get("/api/v2/files/" + urllib.parse.quote(base + "/in"), token=ALICE_TOKEN)
    assert [n["name"] for n in r.json()["nodes"]] == ["invoice-1001.txt"]

    # solution/run: input_folder, settings.output_folder and solution_path without '/'; shown back with one
    r = stack.post("/solution/run", {"name": "No Slash", "version": "1.0.0", "input_folder": base + "/in",
                                     "settings": {"output_folder": base + "/out"}}, token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["output_folder"] == "/" + base + "/out"
    st = wait_done(stack, r.json()["job_id"], ALICE_TOKEN)
    assert st["results"][0] == {"status": "OK", "output_folder": "/" + base + "/out"}, st
    recs = stack.get("/jobs/results", params={"job_id": r.json()["job_id"]}, token=ALICE_TOKEN).json()["records"]
    assert recs[0]["output_file_path"].startswith("/" + base + "/out/")
    assert os.path.isfile(os.path.join(drive(stack, base + "/out"), "batch.ibflowresults"))
    r = stack.post("/solution/run", {"solution_path": path.lstrip("/"), "input_folder": base + "/in"},
                   token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["output_folder"] == "/alice/my_repo/fs/Instabase Drive/noslash/out"
    wait_done(stack, r.json()["job_id"], ALICE_TOKEN)

    # run_sync: solution_path and output_dir without '/'
    r = stack.post("/solution/run_sync", {"solution_path": path.lstrip("/"), "output_dir": base + "/sync",
                                          "files": [{"file_name": "a.txt", "file_content": b64(INVOICE)}]},
                   token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    assert r.json()["binary_path"] == path + "/No Slash.ibflowbin"
    assert r.json()["records"][0]["output_file_path"].startswith("/" + base + "/sync/")

    # files/copy and files/extract bodies
    r = stack.post("/files/copy", {"src_path": base + "/in", "dst_path": base + "/in-copy"}, token=ALICE_TOKEN)
    assert r.status_code == 202, r.text
    assert wait_done(stack, r.json()["job_id"], ALICE_TOKEN)["results"][0]["status"] == "OK"
    assert os.path.isfile(os.path.join(drive(stack, base + "/in-copy"), "invoice-1001.txt"))
    r = stack.post("/files/extract", {"src_path": path.lstrip("/"), "dst_path": base + "/unpacked"},
                   token=ALICE_TOKEN)
    assert r.status_code == 202, r.text
    assert wait_done(stack, r.json()["job_id"], ALICE_TOKEN)["results"][0]["status"] == "OK"
    assert os.path.isfile(os.path.join(drive(stack, base + "/unpacked"), "No Slash.ibflowbin"))


@pytest.mark.parametrize("op,body,msg", [
    ("/solution/create", {"content_folder": "bob/src", "output_folder": "alice/out"},
     "content_folder: '/bob/src' belongs to another user"),
    ("/solution/run", {"name": "No Slash", "version": "1.0.0", "input_folder": "bob/in"},
     "input_folder: '/bob/in' belongs to another user"),
    ("/solution/run_sync", {"solution_path": "bob/x.ibsolution", "files": [{"file_name": "a.txt", "file_content": ""}]},
     "solution_path: '/bob/x.ibsolution' belongs to another user"),
    ("/files/copy", {"src_path": "bob/a", "dst_path": "alice/a"}, "src_path: '/bob/a' belongs to another user"),
])
def test_paths_without_leading_slash_keep_their_owner(stack, op, body, msg):
    # the same ownership rule with or without the '/': another user's folder is refused, named with a '/'
    assert assert_error(stack.post(op, body, token=ALICE_TOKEN), 403, "forbidden")["msg"] == msg
    with_slash = {k: ("/" + v if k.endswith(("_folder", "_path")) else v) for k, v in body.items()}
    assert assert_error(stack.post(op, with_slash, token=ALICE_TOKEN), 403, "forbidden")["msg"] == msg


@pytest.mark.parametrize("path,msg", [
    ("alice//x", "content_folder: path 'alice//x' has an empty segment"),
    ("alice/../bob", "content_folder: path 'alice/../bob' has a '..' segment"),
    ("./alice", "content_folder: path './alice' has a '.' segment"),
])
def test_bad_paths_without_leading_slash(stack, path, msg):
    r = stack.post("/solution/create", {"content_folder": path, "output_folder": "alice/out"}, token=ALICE_TOKEN)
    assert assert_error(r, 400, "bad_request")["msg"] == msg
