"""The files API where the original product's clients call it: POST /api/v2/files/copy and /extract (jobs, 202),
the folder listing's full_path, and jobs/status polled with the original product's job types for every kind of
job (copy, extract, run)."""
import io
import json
import os
import shutil
import time
import zipfile

import pytest

from conftest import ADMIN_TOKEN, ALICE_TOKEN, SOURCE, assert_error

V2 = "/api/v2/files"
EXAMPLE = os.path.join(SOURCE, "docs/example-solution")
TYPES = ["flow", "refiner", "job", "async", "group"]


def put(stack, path, data, token=ALICE_TOKEN):
    r = stack.call("PUT", V2 + "/" + path.lstrip("/"), token, data=data)
    assert r.status_code == 204, (path, r.status_code, r.text)


def read(stack, path, token=ALICE_TOKEN):
    r = stack.get(V2 + "/" + path.lstrip("/"), token=token)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.content


def status(stack, job, token=ALICE_TOKEN, type_=None):
    q = "/api/v1/jobs/status?job_id=" + job + ("&type=" + type_ if type_ is not None else "")
    return stack.get(q, token=token)


def wait_done(stack, job, token=ALICE_TOKEN, type_="job", timeout=60):
    """Polls as the original product's CI/CD client does: until state is DONE or COMPLETE."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = status(stack, job, token, type_)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "OK", body
        if body["state"] in ("DONE", "COMPLETE"):
            return body
        assert body["state"] == "PENDING", body
        time.sleep(0.1)
    raise AssertionError("job %s did not end: %s" % (job, body))


def start(stack, which, body, token=ALICE_TOKEN):
    r = stack.post(V2 + "/" + which, body, token=token)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "OK"
    return r.json()["job_id"]


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def ibsolution(stack):
    """The example solution packaged by alice into her drive: an .ibsolution to extract and to run."""
    for dirpath, _, files in os.walk(EXAMPLE):
        for fn in files:
            rel = os.path.relpath(os.path.join(dirpath, fn), EXAMPLE)
            with open(os.path.join(dirpath, fn), "rb") as f:
                put(stack, "alice/sol/content/" + rel, f.read())
    r = stack.post("/solution/create", {"content_folder": "alice/sol/content", "output_folder": "alice/sol/build"},
                   token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    return r.json()["ibsolution_path"]


# --- copy -------------------------------------------------------------------------------------------------------


def test_copy_a_file(stack):
    put(stack, "alice/c1/a.txt", b"alpha")
    job = start(stack, "copy", {"src_path": "alice/c1/a.txt", "dst_path": "alice/c1/new/b.txt"})
    st = wait_done(stack, job)
    assert st["state"] == "DONE"
    assert st["results"] == [{"status": "OK", "output_folder": "alice/c1/new/b.txt"}]
    assert json.loads(st["cur_status"])["status"] == "COMPLETE"
    assert read(stack, "alice/c1/new/b.txt") == b"alpha"
    assert read(stack, "alice/c1/a.txt") == b"alpha"


def test_copy_a_folder(stack):
    put(stack, "alice/c2/src/x.txt", b"x")
    put(stack, "alice/c2/src/deep/er/y.txt", b"y" * 100000)
    job = start(stack, "copy", {"src_path": "/alice/c2/src", "dst_path": "/alice/c2/dst"})
    assert wait_done(stack, job)["results"][0]["status"] == "OK"
    assert read(stack, "alice/c2/dst/x.txt") == b"x"
    assert read(stack, "alice/c2/dst/deep/er/y.txt") == b"y" * 100000


def test_copy_refusals(stack):
    put(stack, "alice/c3/a.txt", b"a")
    assert_error(stack.post(V2 + "/copy", {"src_path": "alice/c3/none", "dst_path": "alice/c3/b"}, token=ALICE_TOKEN),
                 404, "not_found", "src_path: '/alice/c3/none' does not exist")
    assert_error(stack.post(V2 + "/copy", {"src_path": "alice/c3/a.txt", "dst_path": "bob/stolen.txt"},
                            token=ALICE_TOKEN),
                 403, "forbidden", "dst_path: '/bob/stolen.txt' belongs to another user")
    assert_error(stack.post(V2 + "/copy", {"src_path": "bob/x", "dst_path": "alice/c3/x"}, token=ALICE_TOKEN),
                 403, "forbidden", "src_path: '/bob/x' belongs to another user")
    assert_error(stack.post(V2 + "/copy", {"src_path": "alice/c3/a.txt"}, token=ALICE_TOKEN),
                 400, "bad_request", "'dst_path' is required")
    assert_error(stack.post(V2 + "/copy", {"src_path": 7, "dst_path": "alice/c3/b"}, token=ALICE_TOKEN),
                 400, "bad_request", "'src_path' must be a string")
    assert_error(stack.post(V2 + "/copy", {"src_path": "alice/c3/a.txt", "dst_path": "alice/c3/a.txt"},
                            token=ALICE_TOKEN),
                 409, "conflict", "dst_path: '/alice/c3/a.txt' already exists")
    assert not os.path.exists(os.path.join(stack.data, "drive/bob/stolen.txt"))
    assert not os.path.exists(os.path.join(stack.data, "drive/alice/c3/b"))


# --- extract ----------------------------------------------------------------------------------------------------


def test_extract_a_zip_with_and_without_dst_path(stack):
    put(stack, "alice/z1/data.zip", zip_bytes({"a.txt": "A", "sub/b.txt": "B"}))
    job = start(stack, "extract", {"src_path": "alice/z1/data.zip", "dst_path": "alice/z1/out"})
    assert wait_done(stack, job)["results"] == [{"status": "OK", "output_folder": "alice/z1/out"}]
    assert read(stack, "alice/z1/out/sub/b.txt") == b"B"
    # without dst_path, or with an empty one: the archive's path without its extension
    job = start(stack, "extract", {"src_path": "alice/z1/data.zip"})
    assert wait_done(stack, job)["results"] == [{"status": "OK", "output_folder": "/alice/z1/data"}]
    assert read(stack, "alice/z1/data/a.txt") == b"A"
    put(stack, "alice/z1/more.v2.zip", zip_bytes({"m.txt": "M"}))
    job = start(stack, "extract", {"src_path": "/alice/z1/more.v2.zip", "dst_path": ""})
    assert wait_done(stack, job)["results"] == [{"status": "OK", "output_folder": "/alice/z1/more.v2"}]
    assert read(stack, "alice/z1/more.v2/m.txt") == b"M"


def test_extract_reads_a_zip_by_content(stack):
    put(stack, "alice/z2/archive.bin", zip_bytes({"in.txt": "inside"}))
    job = start(stack, "extract", {"src_path": "alice/z2/archive.bin"})
    assert wait_done(stack, job)["results"][0]["status"] == "OK"
    assert read(stack, "alice/z2/archive/in.txt") == b"inside"


def test_extract_an_ibsolution_with_and_without_dst_path(stack, ibsolution):
    assert ibsolution == "/alice/sol/build/invoice_demo-1.0.0.ibsolution"
    job = start(stack, "extract", {"src_path": ibsolution.lstrip("/"), "dst_path": "alice/sol/unpacked"})
    assert wait_done(stack, job)["results"][0]["status"] == "OK"
    manifest = json.loads(read(stack, "alice/sol/unpacked/package.json"))
    assert manifest["name"] == "invoice_demo" and manifest["version"] == "1.0.0"
    job = start(stack, "extract", {"src_path": ibsolution})
    st = wait_done(stack, job)
    assert st["results"] == [{"status": "OK", "output_folder": "/alice/sol/build/invoice_demo-1.0.0"}]
    assert read(stack, "alice/sol/build/invoice_demo-1.0.0/package.json") == read(stack, "alice/sol/unpacked/package.json")
    assert len(read(stack, "alice/sol/build/invoice_demo-1.0.0/invoice_demo.ibflowbin")) > 0


def test_extract_refusals(stack):
    put(stack, "alice/z3/noext", zip_bytes({"a.txt": "A"}))
    assert_error(stack.post(V2 + "/extract", {"src_path": "alice/z3/noext"}, token=ALICE_TOKEN),
                 400, "bad_request",
                 "dst_path: required, as src_path '/alice/z3/noext' has no extension to drop for the default folder")
    put(stack, "alice/z3/.zip", zip_bytes({"a.txt": "A"}))
    assert_error(stack.post(V2 + "/extract", {"src_path": "alice/z3/.zip"}, token=ALICE_TOKEN),
                 400, "bad_request", "dst_path: required, as src_path '/alice/z3/.zip' has no extension")
    assert_error(stack.post(V2 + "/extract", {"src_path": "alice/z3/missing.zip"}, token=ALICE_TOKEN),
                 404, "not_found", "src_path: '/alice/z3/missing.zip' does not exist")
    assert_error(stack.post(V2 + "/extract", {"src_path": "alice/z3/noext", "dst_path": "bob/z"}, token=ALICE_TOKEN),
                 403, "forbidden", "dst_path: '/bob/z' belongs to another user")
    assert_error(stack.post(V2 + "/extract", {"src_path": "alice/z3"}, token=ALICE_TOKEN),
                 400, "bad_request", "src_path: '/alice/z3' is a folder, not an archive")
    assert not os.path.exists(os.path.join(stack.data, "drive/bob/z"))


def test_extract_of_what_is_not_a_zip_fails_its_job(stack):
    put(stack, "alice/z4/notes.zip", b"these are notes, not an archive\n")
    job = start(stack, "extract", {"src_path": "alice/z4/notes.zip"})
    st = wait_done(stack, job)
    assert st["state"] == "DONE"
    res = st["results"]
    assert len(res) == 1 and res[0]["status"] == "ERROR", res
    assert res[0]["msg"].startswith("src_path: '/alice/z4/notes.zip' cannot be extracted: "), res
    cur = json.loads(st["cur_status"])
    assert cur["status"] == "FAILED" and cur["curMsg"] == res[0]["msg"]
    assert not os.path.exists(os.path.join(stack.data, "drive/alice/z4/notes"))
    assert sorted(os.listdir(os.path.join(stack.data, "drive/alice/z4"))) == ["notes.zip"]


# --- the URL is also a folder of users named "copy" and "extract" -------------------------------------------------


def test_a_user_folder_named_copy_is_still_a_folder(stack):
    # without src_path the body is a folder creation, as before, in the root folder of a user named "copy"
    r = stack.post(V2 + "/copy", {"name": "inbox", "node_type": "folder"}, token=ADMIN_TOKEN)
    assert r.status_code == 201, r.text
    assert r.json() == {"status": "OK", "path": "/copy/inbox"}
    assert os.path.isdir(os.path.join(stack.data, "drive/copy/inbox"))
    r = stack.post(V2 + "/extract", {"name": "inbox", "node_type": "folder"}, token=ADMIN_TOKEN)
    assert r.status_code == 201, r.text
    # alice is not user "copy": the folder call is refused as for any other user's folder
    assert_error(stack.post(V2 + "/copy", {"name": "x", "node_type": "folder"}, token=ALICE_TOKEN),
                 403, "forbidden", "path: '/copy' belongs to another user")
    assert_error(stack.post(V2 + "/copy", data=b"[1]", token=ALICE_TOKEN), 400, "bad_request",
                 "request body must be a JSON object")
    assert_error(stack.post(V2 + "/extract", data=b"{", token=ALICE_TOKEN), 400, "bad_request",
                 "request body is not valid JSON")
    # other methods on the same URL stay the files API's
    assert stack.get(V2 + "/copy", token=ADMIN_TOKEN).json()["nodes"][0]["name"] == "inbox"


# --- listing ----------------------------------------------------------------------------------------------------


def test_folder_listing_has_full_path_without_a_leading_slash(stack):
    put(stack, "alice/lst/Instabase Drive/b-1.0.0.ibsolution", b"zz")
    put(stack, "alice/lst/Instabase Drive/sub/x.txt", b"x")
    r = stack.get(V2 + "/alice/lst/Instabase%20Drive", token=ALICE_TOKEN, params={"expect-node-type": "folder"})
    assert r.status_code == 200, r.text
    nodes = r.json()["nodes"]
    for n in nodes:
        assert isinstance(n.pop("modified"), int)
    assert nodes == [
        {"name": "b-1.0.0.ibsolution", "full_path": "alice/lst/Instabase Drive/b-1.0.0.ibsolution", "type": "file",
         "size": 2},
        {"name": "sub", "full_path": "alice/lst/Instabase Drive/sub", "type": "folder", "size": 0},
    ]
    # the CI/CD client's use: pick the .ibsolution files of a folder by full_path, then read them by it
    paths = [n["full_path"] for n in nodes if n["full_path"].endswith(".ibsolution")]
    assert read(stack, paths[0].replace(" ", "%20")) == b"zz"
    # a user's root folder too
    root = stack.get(V2 + "/alice", token=ALICE_TOKEN).json()["nodes"]
    assert {"lst": "alice/lst"}.items() <= {n["name"]: n["full_path"] for n in root}.items()


# --- jobs/status for every kind of job ----------------------------------------------------------------------------


def test_jobs_status_answers_every_type_for_every_kind_of_job(stack, ibsolution):
    put(stack, "alice/js/in/invoice.txt", open(os.path.join(EXAMPLE, "demo_data/invoice-1001.txt"), "rb").read())
    put(stack, "alice/js/arch.zip", zip_bytes({"f.txt": "F"}))
    jobs = {
        "copy": start(stack, "copy", {"src_path": "alice/js/in", "dst_path": "alice/js/in2"}),
        "extract": start(stack, "extract", {"src_path": "alice/js/arch.zip"}),
        "failed extract": start(stack, "extract", {"src_path": "alice/js/in/invoice.txt", "dst_path": "alice/js/bad"}),
    }
    r = stack.post("/api/v1/solution/run", {"solution_path": ibsolution, "input_folder": "alice/js/in",
                                            "settings": {"output_folder": "alice/js/out"}}, token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    jobs["run"] = r.json()["job_id"]
    for kind, job in jobs.items():
        first = wait_done(stack, job, type_=None)
        assert first["job_id"] == job and first["state"] == "DONE", (kind, first)
        cur = json.loads(first["cur_status"])
        if kind == "failed extract":
            assert first["results"][0]["status"] == "ERROR", first
            assert first["results"][0]["msg"].startswith(
                "src_path: '/alice/js/in/invoice.txt' cannot be extracted: "), first
            assert cur["status"] == "FAILED"
        else:
            assert first["results"][0]["status"] == "OK", (kind, first)
            assert cur["status"] == "COMPLETE"
        # every type the original clients send gets the same answer
        for t in TYPES:
            r = status(stack, job, type_=t)
            assert r.status_code == 200, (kind, t, r.text)
            assert r.json() == first, (kind, t)
    assert json.loads(status(stack, jobs["run"]).json()["cur_status"])["run_summary"]["numFiles"] == 1


def test_jobs_status_refuses_an_unknown_type(stack):
    put(stack, "alice/jt/a.txt", b"a")
    job = start(stack, "copy", {"src_path": "alice/jt/a.txt", "dst_path": "alice/jt/b.txt"})
    wait_done(stack, job)
    for bad in ["bogus", "FLOW", "", "job "]:
        assert_error(status(stack, job, type_=bad.replace(" ", "%20")), 400, "bad_request",
                     "type: '%s' is not a job type (flow, refiner, job, async or group)" % bad)
    # checked before the job is looked up: an unknown job with a bad type is the type's 400
    unknown = "0b8f2a52-3c1d-4e5f-8a9b-0c1d2e3f4a5b"
    assert_error(status(stack, unknown, type_="bogus"), 400, "bad_request", "type: 'bogus'")
    assert_error(status(stack, unknown, type_="job"), 404, "not_found", unknown)
