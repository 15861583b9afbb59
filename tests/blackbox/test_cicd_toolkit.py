"""The calls the original product's public CI/CD toolkit (instabase/app-cicd-toolkit, promote_solution.py) makes,
each tested here in ibsol's own words: the marketplace read as a drive (GET, HEAD, listings) and copied out of with
the v1 drives API, read-only to everyone; copy and extract that replace what they copied before (the toolkit copies
and unpacks to the same paths on every run and then reads what it just wrote); folders made with POST; chunked
uploads; deployed solutions (POST/GET /api/v2/solutions/deployed) that run by name and version; and the Flow
Binary API (flow/run_binary_async, flow_binary/results). The last test runs the toolkit itself between a DEV and a
PROD stack when it is found at $IB_CICD_DIR (its code never enters this repository)."""
import base64
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from urllib.parse import quote

import pytest

from conftest import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, assert_error

V2 = "/api/v2/files/"
MARKET = "system/global/fs/Instabase Drive/Applications/Marketplace/All"
DRIVE = "admin/my_repo/fs/Instabase Drive"  # paths as the toolkit writes them: no leading '/'

REFINER = {"fields": [
    {"name": "invoice_no", "formula": "regex(INPUT_COL, 'Invoice No:\\s*([A-Z0-9-]+)')"},
    {"name": "total", "formula": "number(regex(INPUT_COL, 'Total:\\s*([0-9][0-9.,]*)'))", "type": "FLOAT"},
]}
FLOW = {"steps": [{"type": "process_files"}, {"type": "apply_refiner", "program": "modules/invoice.ibrefiner"}]}
DOC = b"ACME Invoice\nInvoice No: INV-77\nTotal: 120.50\n"


def manifest(name, version, **extra):
    m = {"name": name, "version": version, "short_description": "Reads invoices", "authors": ["Jay Doe"],
         "accelerator_type": ["solution"], "owner": "IB_DEPLOYED", "visibility": "PUBLIC"}
    m.update(extra)
    return m


def put(stack, path, data, token=ADMIN_TOKEN):
    r = stack.call("PUT", V2 + quote(path), token, data=data)
    assert r.status_code == 204, (path, r.status_code, r.text)


def write_solution(stack, folder, m, token=ADMIN_TOKEN):
    """The original product's solution folder: package.json, icon.png, the flow file with modules/ beside it."""
    put(stack, folder + "/package.json", json.dumps(m).encode(), token)
    put(stack, folder + "/icon.png", b"\x89PNG\r\n\x1a\n", token)
    put(stack, folder + "/Flow/invoice.ibflow", json.dumps(FLOW).encode(), token)
    put(stack, folder + "/Flow/modules/invoice.ibrefiner", json.dumps(REFINER).encode(), token)


def build(stack, folder, out, token=ADMIN_TOKEN):
    """flow_binary/compile then solution/create, as the toolkit's compile step does; the .ibsolution's path."""
    r = stack.post("/api/v1/flow_binary/compile/" + quote(folder), {
        "binary_type": "Single Flow", "flow_project_root": folder + "/Flow",
        "predefined_binary_path": folder + "/Flow/invoice.ibflowbin",
        "settings": {"flow_file": "invoice.ibflow", "is_flow_v3": True}}, token=token)
    assert r.status_code == 200, r.text
    r = stack.post("/api/v1/solution/create", {"content_folder": folder, "output_folder": out}, token=token)
    assert r.status_code == 200, r.text
    return r.json()["ibsolution_path"]


def job_state(stack, job, token=ADMIN_TOKEN, timeout=60):
    """Polls jobs/status?type=job as the toolkit does, until DONE; the final status body."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = stack.get("/api/v1/jobs/status?job_id=%s&type=job" % job, token=token)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "OK", body
        if body["state"] in ("DONE", "COMPLETE"):
            return body
        time.sleep(0.1)
    raise AssertionError("job %s did not end" % job)


def market_file(name, version):
    return "%s/%s/%s/%s-%s.ibsolution" % (MARKET, name, version, name, version)


@pytest.fixture(scope="module")
def published(stack):
    """'Invoice Helpers' 0.1.0 built and published by the admin; its archive's bytes."""
    write_solution(stack, DRIVE + "/Helpers", manifest("Invoice Helpers", "0.1.0"))
    path = build(stack, DRIVE + "/Helpers", DRIVE + "/built")
    r = stack.post("/api/v1/marketplace/publish", {"ibsolution_path": path})
    assert r.status_code == 200, r.text
    return stack.get(V2 + quote(path.lstrip("/"))).content


# --- the marketplace as a read-only drive -------------------------------------------------------------------------


def test_published_archives_read_from_the_marketplace_drive(stack, published):
    for prefix in (V2, "/api/v1/drives/"):
        for token in (ADMIN_TOKEN, ALICE_TOKEN):  # every caller with a token may read it
            r = stack.get(prefix + quote(market_file("Invoice Helpers", "0.1.0")), token=token)
            assert r.status_code == 200, r.text
            assert r.content == published
        r = stack.call("HEAD", prefix + quote(market_file("Invoice Helpers", "0.1.0")), ALICE_TOKEN)
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(published)
    r = stack.get(V2 + quote(MARKET) + "?expect-node-type=folder", token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    assert [(n["name"], n["type"], n["full_path"]) for n in r.json()["nodes"]] == [
        ("Invoice Helpers", "folder", MARKET + "/Invoice Helpers")]
    versions = stack.get(V2 + quote(MARKET + "/Invoice Helpers"), token=ALICE_TOKEN).json()["nodes"]
    assert [n["name"] for n in versions] == ["0.1.0"]
    files = stack.get(V2 + quote(MARKET + "/Invoice Helpers/0.1.0"), token=ALICE_TOKEN).json()["nodes"]
    assert files == [{"name": "Invoice Helpers-0.1.0.ibsolution", "type": "file", "size": len(published),
                      "full_path": market_file("Invoice Helpers", "0.1.0"), "modified": files[0]["modified"]}]


def test_the_marketplace_drive_is_read_only_for_everyone(stack, published):
    target = market_file("Invoice Helpers", "0.1.0")
    for token in (ADMIN_TOKEN, ALICE_TOKEN):
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            r = stack.call(method, V2 + quote(target), token, data=b"x", headers={"IB-Cursor": "0"})
            assert_error(r, 403, "forbidden", "path: '/%s' is the marketplace, which is read-only: %s is not "
                                              "allowed there (publish with marketplace/publish)" % (target, method))
    # anything else under system/global: written never, read as not found
    assert_error(stack.call("PUT", V2 + "system/global/x.txt", ADMIN_TOKEN, data=b"x"), 403, "forbidden",
                 "path: '/system/global/x.txt' is the marketplace, which is read-only: PUT")
    assert_error(stack.get(V2 + quote(market_file("Invoice Helpers", "9.9.9"))), 404, "not_found",
                 "path: '/%s' not found" % market_file("Invoice Helpers", "9.9.9"))
    assert_error(stack.get(V2 + quote(MARKET + "/Invoice Helpers/0.1.0/meta.json")), 404, "not_found")
    assert_error(stack.get(V2 + quote(MARKET + "/Invoice Helpers/../../x")), 404, "not_found")
    assert_error(stack.post("/api/v2/files/copy", {"src_path": "admin/my_repo/fs/Instabase Drive/built",
                                                  "dst_path": MARKET + "/x"}),
                 403, "forbidden", "dst_path: '/%s/x' is the marketplace, which is read-only" % MARKET)
    # the stored archive is untouched
    assert stack.get(V2 + quote(target)).content == published


def test_drives_copy_out_of_the_marketplace(stack, published):
    # the toolkit's dependency download: the v1 drives API's copy, a job polled with type=job
    dst = "alice/deps/Invoice Helpers-0.1.0.ibsolution"
    url = "/api/v1/drives/" + quote(market_file("Invoice Helpers", "0.1.0")) + "/copy?is_v2=true"
    for _ in range(2):  # copied again on the next run: the copy replaces the first one
        r = stack.post(url, {"new_full_path": dst}, token=ALICE_TOKEN)
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["status"] == "OK" and body["job_id"]
        st = job_state(stack, body["job_id"], ALICE_TOKEN)
        assert st["results"][0]["status"] == "OK", st
        assert stack.get(V2 + quote(dst), token=ALICE_TOKEN).content == published
    # into another user's folder: refused, nothing written
    assert_error(stack.post(url, {"new_full_path": "bob/deps/x.ibsolution"}, token=ALICE_TOKEN),
                 403, "forbidden", "dst_path: '/bob/deps/x.ibsolution' belongs to another user")
    assert not stack.get(V2 + "bob/deps", token=BOB_TOKEN).ok
    assert_error(stack.post(url, {}, token=ALICE_TOKEN), 400, "bad_request", "'new_full_path' is required")
    assert_error(stack.post("/api/v1/drives/" + quote(market_file("Nope", "1.0.0")) + "/copy?is_v2=true",
                            {"new_full_path": "alice/deps/n"}, token=ALICE_TOKEN),
                 404, "not_found", "src_path: '/%s' is not a published archive" % market_file("Nope", "1.0.0"))
    assert_error(stack.call("PUT", "/api/v1/drives/alice/x.txt", ALICE_TOKEN, data=b"x"), 405, "bad_request",
                 "the v1 drives API answers GET, HEAD and POST <path>/copy")


# --- copy and extract over what they wrote before ---------------------------------------------------------------


def test_copy_and_extract_replace_the_destination(stack):
    put(stack, "alice/re/a.txt", b"one", ALICE_TOKEN)
    put(stack, "alice/re/out.txt", b"old", ALICE_TOKEN)
    r = stack.post("/api/v2/files/copy", {"src_path": "alice/re/a.txt", "dst_path": "alice/re/out.txt"},
                   token=ALICE_TOKEN)
    assert r.status_code == 202, r.text
    assert job_state(stack, r.json()["job_id"], ALICE_TOKEN)["results"][0]["status"] == "OK"
    assert stack.get(V2 + "alice/re/out.txt", token=ALICE_TOKEN).content == b"one"
    # extract into a folder that is there: replaced whole, so nothing of the old one is left
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("new.txt", "new")
    put(stack, "alice/re/sol.zip", buf.getvalue(), ALICE_TOKEN)
    put(stack, "alice/re/sol/stale.txt", b"stale", ALICE_TOKEN)
    r = stack.post("/api/v2/files/extract", {"src_path": "alice/re/sol.zip"}, token=ALICE_TOKEN)
    assert r.status_code == 202, r.text
    assert job_state(stack, r.json()["job_id"], ALICE_TOKEN)["results"][0]["status"] == "OK"
    names = [n["name"] for n in stack.get(V2 + "alice/re/sol", token=ALICE_TOKEN).json()["nodes"]]
    assert names == ["new.txt"]
    # a folder is never replaced by a file, nor a file by a folder; a copy never lands inside its source
    assert_error(stack.post("/api/v2/files/copy", {"src_path": "alice/re/a.txt", "dst_path": "alice/re/sol"},
                            token=ALICE_TOKEN),
                 409, "conflict", "dst_path: '/alice/re/sol' already exists and is a folder; the copy makes a file")
    assert_error(stack.post("/api/v2/files/extract", {"src_path": "alice/re/sol.zip", "dst_path": "alice/re/a.txt"},
                            token=ALICE_TOKEN),
                 409, "conflict", "dst_path: '/alice/re/a.txt' already exists and is a file; the extract makes a folder")
    assert_error(stack.post("/api/v2/files/copy", {"src_path": "alice/re", "dst_path": "alice/re/sol/again"},
                            token=ALICE_TOKEN),
                 400, "bad_request", "dst_path: '/alice/re/sol/again' is inside src_path '/alice/re'")


def test_folders_made_with_post_and_uploads_in_chunks(stack):
    # create_folder_if_it_does_not_exists: HEAD (404), then POST {name, node_type} to the parent
    assert stack.call("HEAD", V2 + "alice/up/target_dependencies", ALICE_TOKEN).status_code == 404
    r = stack.post(V2 + "alice/up", {"name": "target_dependencies", "node_type": "folder"}, token=ALICE_TOKEN)
    assert r.status_code == 201, r.text
    assert stack.call("HEAD", V2 + "alice/up/target_dependencies", ALICE_TOKEN).status_code == 200
    # upload_chunks: PATCH with IB-Cursor 0, then -1 for each further part
    path = V2 + "alice/up/target_dependencies/big.bin"
    for cursor, part in (("0", b"a" * 1000), ("-1", b"b" * 10), ("-1", b"c")):
        r = stack.call("PATCH", path, ALICE_TOKEN, data=part, headers={"IB-Cursor": cursor})
        assert r.status_code == 204, r.text
    assert stack.get(path, token=ALICE_TOKEN).content == b"a" * 1000 + b"b" * 10 + b"c"


# --- deployed solutions -------------------------------------------------------------------------------------------


def test_deploy_runs_by_name_and_version(stack):
    write_solution(stack, DRIVE + "/Reader", manifest("Invoice Reader (EU)", "1.2.0", visibility="PRIVATE"))
    path = build(stack, DRIVE + "/Reader", DRIVE + "/built")
    assert path == "/%s/built/Invoice Reader (EU)-1.2.0.ibsolution" % DRIVE
    for _ in range(2):  # deployed again with the same archive: nothing changes, the job succeeds
        r = stack.post("/api/v2/solutions/deployed", {"solution_path": path.lstrip("/")})
        assert r.status_code == 202, r.text
        st = job_state(stack, r.json()["job_id"])
        assert st["results"][0]["status"] == "OK", st
    listed = stack.get("/api/v2/solutions/deployed").json()["solutions"]
    mine = [s for s in listed if s["name"] == "Invoice Reader (EU)"]
    assert len(mine) == 1, listed
    assert mine[0]["version"] == "1.2.0" and mine[0]["owner"] == "IB_DEPLOYED" and mine[0]["visibility"] == "PRIVATE"
    assert mine[0]["deployer"] == "admin" and mine[0]["solution_path"] == path
    # a PRIVATE solution is listed to admins and its deployer only
    assert "Invoice Reader (EU)" not in [s["name"] for s in stack.get("/api/v2/solutions/deployed",
                                                                       token=ALICE_TOKEN).json()["solutions"]]
    r = stack.post("/api/v1/solution/run_sync", {"name": "Invoice Reader (EU)", "version": "1.2.0", "files": [
        {"file_name": "inv.txt", "file_content": base64.b64encode(DOC).decode()}]}, token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    fields = {f["key"]: f["value"] for f in r.json()["records"][0]["results"]}
    assert fields == {"invoice_no": "INV-77", "total": 120.5}


def test_deploy_refusals_and_a_corrupt_archive(stack):
    put(stack, DRIVE + "/bad/Broken-1.0.0.ibsolution", b"PK\x03\x04 this is no zip archive")
    r = stack.post("/api/v2/solutions/deployed", {"solution_path": DRIVE + "/bad/Broken-1.0.0.ibsolution"})
    assert r.status_code == 202, r.text
    st = job_state(stack, r.json()["job_id"])
    res = st["results"][0]
    assert res["status"] == "ERROR", st
    assert res["msg"].startswith("solution_path '/%s/bad/Broken-1.0.0.ibsolution': " % DRIVE), res
    assert res["msg"].endswith("; nothing was deployed"), res
    assert json.loads(st["cur_status"])["status"] == "FAILED"
    # nothing half-made: no installed or deployed folder, no temporary
    for top in ("installed", "deployed"):
        folder = os.path.join(stack.data, top)
        leftovers = [os.path.join(dp, f) for dp, ds, fs in os.walk(folder) for f in fs + ds
                     if "Broken" in f or ".tmp-" in f]
        assert leftovers == [], leftovers
    assert_error(stack.post("/api/v2/solutions/deployed", {"solution_path": DRIVE + "/bad/none.ibsolution"}),
                 404, "not_found", "solution_path: '/%s/bad/none.ibsolution' does not exist" % DRIVE)
    assert_error(stack.post("/api/v2/solutions/deployed", {"solution_path": "alice/x.ibsolution"}, token=ALICE_TOKEN),
                 403, "forbidden", "only an admin may deploy solutions (user 'alice' is not one)")
    assert_error(stack.post("/api/v2/solutions/deployed", {}), 400, "bad_request", "'solution_path' is required")


def test_a_deployed_version_is_immutable(stack):
    write_solution(stack, DRIVE + "/Imm", manifest("Immutable", "1.0.0"))
    path = build(stack, DRIVE + "/Imm", DRIVE + "/imm1")
    r = stack.post("/api/v2/solutions/deployed", {"solution_path": path})
    assert job_state(stack, r.json()["job_id"])["results"][0]["status"] == "OK"
    put(stack, DRIVE + "/Imm/Flow/modules/invoice.ibrefiner", json.dumps({"fields": REFINER["fields"][:1]}).encode())
    other = build(stack, DRIVE + "/Imm", DRIVE + "/imm2")
    r = stack.post("/api/v2/solutions/deployed", {"solution_path": other})
    res = job_state(stack, r.json()["job_id"])["results"][0]
    assert res["status"] == "ERROR" and res["msg"].startswith(
        "solution 'Immutable' version 1.0.0 is already deployed with other content (sha256 "), res


# --- the Flow Binary API ------------------------------------------------------------------------------------------


def test_run_binary_async_and_its_results_page_by_page(stack):
    write_solution(stack, DRIVE + "/Bin", manifest("Binary Run", "1.0.0"))
    build(stack, DRIVE + "/Bin", DRIVE + "/bin_out")
    for i in range(23):
        put(stack, DRIVE + "/bin_in/inv-%02d.txt" % i, DOC.replace(b"INV-77", b"INV-%02d" % i))
    r = stack.post("/api/v1/flow/run_binary_async", {
        "input_dir": DRIVE + "/bin_in", "binary_path": DRIVE + "/Bin/Flow/invoice.ibflowbin",
        "settings": {"output_folder": DRIVE + "/bin_run"}})
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    assert r.json()["output_folder"] == "/%s/bin_run" % DRIVE
    st = job_state(stack, job)
    assert json.loads(st["cur_status"])["status"] == "COMPLETE", st
    # the same output layout as solution/run: batch.ibflowresults in the output folder
    results = DRIVE + "/bin_run/batch.ibflowresults"
    assert stack.get(V2 + quote(results)).status_code == 200
    r = stack.post("/api/v1/flow_binary/results", {"ibresults_path": results, "options": {}, "file_offset": 0})
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["files"], page["total_files"], page["file_offset"], page["next_file_offset"]) == (20, 23, 0, 20)
    assert page["job_id"] == job and page["binary_path"] == "/%s/Bin/Flow/invoice.ibflowbin" % DRIVE
    assert [rec["file_name"] for rec in page["records"]] == ["inv-%02d.txt" % i for i in range(20)]
    assert {f["key"]: f["value"] for f in page["records"][3]["results"]} == {"invoice_no": "INV-03", "total": 120.5}
    r = stack.post("/api/v1/flow_binary/results", {"ibresults_path": DRIVE + "/bin_run", "file_offset": 20})
    page = r.json()
    assert (page["files"], page["next_file_offset"]) == (3, None)
    assert [rec["file_name"] for rec in page["records"]] == ["inv-20.txt", "inv-21.txt", "inv-22.txt"]


def test_flow_binary_refusals(stack):
    put(stack, DRIVE + "/bin_bad/in/a.txt", DOC)
    assert_error(stack.post("/api/v1/flow/run_binary_async", {
        "input_dir": DRIVE + "/bin_bad/in", "binary_path": DRIVE + "/bin_bad/none.ibflowbin"}),
        404, "not_found", "binary_path: '/%s/bin_bad/none.ibflowbin' does not exist" % DRIVE)
    put(stack, DRIVE + "/bin_bad/junk.ibflowbin", b"not a flow")
    assert_error(stack.post("/api/v1/flow/run_binary_async", {
        "input_dir": DRIVE + "/bin_bad/in", "binary_path": DRIVE + "/bin_bad/junk.ibflowbin"}),
        400, "bad_request", "binary_path: '/%s/bin_bad/junk.ibflowbin' is not a valid compiled flow: " % DRIVE)
    assert_error(stack.post("/api/v1/flow/run_binary_async", {
        "input_dir": DRIVE + "/bin_bad/nothing", "binary_path": DRIVE + "/bin_bad/junk.ibflowbin"}),
        404, "not_found", "input_dir: '/%s/bin_bad/nothing' does not exist" % DRIVE)
    assert_error(stack.post("/api/v1/flow_binary/results", {"ibresults_path": DRIVE + "/bin_bad/none"}),
                 404, "not_found", "ibresults_path: '/%s/bin_bad/none' does not exist" % DRIVE)
    assert_error(stack.post("/api/v1/flow_binary/results", {"ibresults_path": DRIVE + "/bin_bad"}),
                 404, "not_found", "ibresults_path: '/%s/bin_bad' holds no batch.ibflowresults" % DRIVE)
    assert_error(stack.post("/api/v1/flow_binary/results", {"ibresults_path": DRIVE + "/bin_bad/in/a.txt"}),
                 400, "bad_request", "ibresults_path: '/%s/bin_bad/in/a.txt' is not a batch.ibflowresults" % DRIVE)
    assert_error(stack.post("/api/v1/flow_binary/results", {"ibresults_path": DRIVE + "/bin_bad", "file_offset": -1}),
                 400, "bad_request", "'file_offset' must be 0 or more, not -1")


# --- the toolkit itself, between two stacks -----------------------------------------------------------------------

TOOLKIT = os.environ.get("IB_CICD_DIR", "")
WORKFLOWS = {
    "remote_marketplace": ["--compile_source_solution", "--remote_flow", "--marketplace"],
    "local_marketplace": ["--local_flow", "--marketplace"],
    "remote_deployed": ["--compile_source_solution", "--remote_flow"],
    "local_deployed": ["--local_flow"],
}


@pytest.mark.skipif(not os.path.isfile(os.path.join(TOOLKIT, "ib_cicd", "promote_solution.py")),
                    reason="the original product's CI/CD toolkit is not at $IB_CICD_DIR (set it to a checkout of "
                           "instabase/app-cicd-toolkit to run promote_solution.py between two stacks)")
@pytest.mark.parametrize("workflow", sorted(WORKFLOWS))
def test_promote_solution_between_two_stacks(stack_factory, tmp_path, workflow):
    dev, prod = stack_factory(), stack_factory()
    # DEV: the solution as developed there, built once, and its dependency published in DEV's marketplace
    write_solution(dev, DRIVE + "/Helpers", manifest("Invoice Helpers", "0.1.0"))
    r = dev.post("/api/v1/marketplace/publish", {"ibsolution_path": build(dev, DRIVE + "/Helpers", DRIVE + "/hb")})
    assert r.status_code == 200, r.text
    sol = manifest("Invoice Reader", "1.3.0", dependencies={"models": [],
                                                            "dev_exchange_packages": ["Invoice Helpers==0.1.0"]})
    write_solution(dev, DRIVE + "/Invoice Reader", sol)
    build(dev, DRIVE + "/Invoice Reader", DRIVE + "/compiled")
    # the git checkout of the local workflow: the same solution folder
    local = tmp_path / "invoice_reader"
    (local / "Flow" / "modules").mkdir(parents=True)
    (local / "package.json").write_text(json.dumps(sol))
    (local / "icon.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (local / "Flow" / "invoice.ibflow").write_text(json.dumps(FLOW))
    (local / "Flow" / "modules" / "invoice.ibrefiner").write_text(json.dumps(REFINER))
    env = dict(os.environ, PYTHONPATH=TOOLKIT, SOURCE_IB_HOST=dev.url, TARGET_IB_HOST=prod.url,
               SOURCE_IB_API_TOKEN=ADMIN_TOKEN, TARGET_IB_API_TOKEN=ADMIN_TOKEN,
               SOURCE_WORKING_DIR=DRIVE + "/work", SOURCE_SOLUTION_DIR=DRIVE + "/Invoice Reader",
               SOURCE_COMPILED_SOLUTIONS_PATH=DRIVE + "/compiled", LOCAL_SOLUTION_DIR="invoice_reader",
               REL_FLOW_PATH="Flow/invoice.ibflow", TARGET_IB_PATH=DRIVE + "/promoted")
    for run in range(2):  # a second run, as CI runs the pipeline again, copies and unpacks over the first
        p = subprocess.run([sys.executable, "-m", "ib_cicd.promote_solution"] + WORKFLOWS[workflow],
                           cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, (run, p.stdout, p.stderr)
    # the promoted package, downloaded and unpacked locally by the toolkit
    assert json.loads((tmp_path / "Invoice Reader-1.3.0" / "package.json").read_text())["version"] == "1.3.0"
    assert (tmp_path / "Invoice Reader-1.3.0.ibsolution").is_file()
    # PROD: the dependency was copied over and published in its marketplace
    info = prod.get("/api/v1/marketplace/info?name=" + quote("Invoice Helpers")).json()
    assert "0.1.0" in json.dumps(info), info
    if "--marketplace" in WORKFLOWS[workflow]:
        r = prod.post("/api/v1/marketplace/install", {"name": "Invoice Reader", "version": "1.3.0"})
        assert r.status_code == 200, r.text
    else:  # deployed: the toolkit does not wait for the deploy job, so wait for the list to show it
        deadline = time.time() + 30
        while not [s for s in prod.get("/api/v2/solutions/deployed").json()["solutions"]
                   if (s["name"], s["version"], s["owner"]) == ("Invoice Reader", "1.3.0", "IB_DEPLOYED")]:
            assert time.time() < deadline, "the solution was not deployed on PROD"
            time.sleep(0.2)
    r = prod.post("/api/v1/solution/run_sync", {"name": "Invoice Reader", "version": "1.3.0", "files": [
        {"file_name": "inv.txt", "file_content": base64.b64encode(DOC).decode()}]})
    assert r.status_code == 200, r.text
    assert {f["key"]: f["value"] for f in r.json()["records"][0]["results"]} == {"invoice_no": "INV-77",
                                                                                   "total": 120.5}


# --- ibsol-runner --once on the original product's package layout --------------------------------------------------


def test_once_runs_a_content_folder_holding_a_compiled_flow(stack, tmp_path):
    from conftest import BIN
    write_solution(stack, DRIVE + "/Once", manifest("Once Reader", "1.0.0"))
    build(stack, DRIVE + "/Once", DRIVE + "/once_out")
    folder = tmp_path / "once"
    (folder / "Flow").mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps(manifest("Once Reader", "1.0.0")))
    (folder / "Flow" / "invoice.ibflowbin").write_bytes(
        stack.get(V2 + quote(DRIVE + "/Once/Flow/invoice.ibflowbin")).content)
    (tmp_path / "inv.txt").write_bytes(DOC)
    env = dict(os.environ, OMP_THREAD_LIMIT="1", ASAN_OPTIONS="detect_leaks=1",
               LSAN_OPTIONS=os.environ.get("LSAN_OPTIONS", ""))
    runner = os.path.join(BIN, "runner", "ibsol-runner")
    p = subprocess.run([runner, "--once", str(folder), str(tmp_path / "inv.txt")], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)["records"][0]
    assert {f["key"]: f["value"] for f in rec["results"]} == {"invoice_no": "INV-77", "total": 120.5}
    # two compiled flows: the message solution/create gives
    (folder / "second.ibflowbin").write_bytes((folder / "Flow" / "invoice.ibflowbin").read_bytes())
    p = subprocess.run([runner, "--once", str(folder), str(tmp_path / "inv.txt")], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 1
    assert p.stderr.strip() == ("ibsol-runner: content folder '%s' holds 2 compiled flows ('Flow/invoice.ibflowbin' "
                                "and 'second.ibflowbin'); a package takes exactly one (or a flow.json)" % folder)
