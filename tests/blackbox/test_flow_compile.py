"""flow_binary/compile as the original product's clients call it, and packages built from its .ibflowbin: a flow
file of any name (w2.ibflow) with its refiners in modules/ beside it compiles into a binary on the drive;
solution/create packages a content folder holding that binary instead of flow.json, and the package publishes,
installs and runs exactly like one built from flow.json. Every bad input is a clear error that writes nothing."""
import base64
import hashlib
import io
import json
import os
import zipfile
from urllib.parse import quote

import pytest

from conftest import ALICE_TOKEN, assert_error

MANIFEST = {"name": "w2_reader", "version": "2.1.0", "short_description": "Reads W-2 forms", "authors": ["Jay Doe"],
            "accelerator_type": ["solution"], "industry": ["Finance"]}
FLOW = {"steps": [{"type": "process_files"},
                  {"type": "apply_refiner", "program": "modules/w2.ibrefiner"},
                  {"type": "validate", "rules": [{"field": "wages", "required": True, "type": "FLOAT", "min": 0}]}]}
REFINER = {"fields": [
    {"name": "employer", "formula": "clean(scan_right(INPUT_COL, 'Employer:'))"},
    {"name": "wages", "formula": "number(regex(INPUT_COL, 'Wages:\\s*([0-9][0-9.,]*)'))", "type": "FLOAT"},
    {"name": "tax_year", "formula": "regex(INPUT_COL, 'Tax year\\s*([0-9]{4})')"},
]}
DOCS = {"w2-acme.txt": "Form W-2  Tax year 2025\nEmployer: ACME Corp\nWages: 52,300.15\n",
        "w2-globex.txt": "Form W-2  Tax year 2025\nEmployer: Globex\nWages: 81,000.00\n"}

SOL = "admin/my_repo/fs/Instabase Drive/W2 Solution"  # written as the original clients do: no leading '/'
FLOW_DIR = "W2 Flow"


def put(stack, path, content, token=None):
    data = content if isinstance(content, bytes) else (content if isinstance(content, str) else json.dumps(content))
    kw = {} if token is None else {"token": token}
    stack.put_file("/" + quote(path), data.encode() if isinstance(data, str) else data, **kw)


def write_solution(stack, sol=SOL, flow=FLOW, refiner=REFINER, token=None):
    """The original product's solution folder: package.json, and the flow with its modules/ in a subfolder."""
    put(stack, sol + "/package.json", MANIFEST, token)
    put(stack, "%s/%s/w2.ibflow" % (sol, FLOW_DIR), flow, token)
    put(stack, "%s/%s/modules/w2.ibrefiner" % (sol, FLOW_DIR), refiner, token)


def compile_call(stack, sol=SOL, rel_flow=FLOW_DIR + "/w2.ibflow", token=None, **over):
    """The body the original product's CI/CD client sends (relative flow path inside the solution folder)."""
    folder, _, flow_file = rel_flow.rpartition("/")
    body = {"binary_type": "Single Flow",
            "flow_project_root": sol + ("/" + folder if folder else ""),
            "predefined_binary_path": sol + "/" + rel_flow.replace(".ibflow", ".ibflowbin"),
            "settings": {"flow_file": flow_file, "is_flow_v3": True}}
    body.update(over)
    kw = {} if token is None else {"token": token}
    return stack.post("/api/v1/flow_binary/compile/" + quote(sol), body, **kw)


def disk(stack, drive_path):
    return os.path.join(stack.data, "drive", drive_path.lstrip("/"))


def test_compile_writes_the_binary_where_asked(stack):
    write_solution(stack)
    r = compile_call(stack)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "OK"
    assert body["binary_path"] == "/%s/%s/w2.ibflowbin" % (SOL, FLOW_DIR)
    assert body["flow_path"] == "/%s/%s/w2.ibflow" % (SOL, FLOW_DIR)
    data = open(disk(stack, body["binary_path"]), "rb").read()
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    doc = json.loads(data)
    assert doc["format"] == "ibflowbin"
    assert doc["solution"] == {"name": None, "version": None}  # solution/create stamps the package's
    assert list(doc["programs"]) == ["modules/w2.ibrefiner"]
    assert [f["name"] for f in doc["programs"]["modules/w2.ibrefiner"]["fields"]] == ["employer", "wages", "tax_year"]
    # The same flow again gives the same bytes; the old binary is replaced whole, nothing else is left beside it.
    r2 = compile_call(stack)
    assert r2.status_code == 200 and r2.json()["sha256"] == body["sha256"], r2.text
    assert sorted(os.listdir(disk(stack, "/%s/%s" % (SOL, FLOW_DIR)))) == ["modules", "w2.ibflow", "w2.ibflowbin"]


def test_compile_defaults_and_the_plain_route(stack):
    """Without predefined_binary_path the binary goes beside the flow; the path may also come in the body."""
    sol = "admin/my_repo/fs/Instabase Drive/defaults"
    write_solution(stack, sol)
    r = stack.post("/flow_binary/compile", {"solution_path": "/" + sol, "flow_project_root": "/%s/%s" % (sol, FLOW_DIR),
                                            "settings": {"flow_file": "w2.ibflow"}})
    assert r.status_code == 200, r.text
    assert r.json()["binary_path"] == "/%s/%s/w2.ibflowbin" % (sol, FLOW_DIR)
    # a flow file in a subfolder of flow_project_root: its refiners are relative to its own folder
    r = compile_call(stack, sol, flow_project_root=sol, settings={"flow_file": FLOW_DIR + "/w2.ibflow"},
                     predefined_binary_path=sol + "/bin/w2.ibflowbin")
    assert r.status_code == 200, r.text
    assert os.path.isfile(disk(stack, sol + "/bin/w2.ibflowbin"))


def test_a_user_compiles_in_their_own_drive(stack):
    sol = "alice/repo/fs/Instabase Drive/mine"
    write_solution(stack, sol, token=ALICE_TOKEN)
    r = compile_call(stack, sol, token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    assert os.path.isfile(disk(stack, r.json()["binary_path"]))


def assert_exact(r, http_status, code, msg):
    body = assert_error(r, http_status, code)
    assert body["msg"] == msg, body
    return body


def test_compile_errors_name_file_field_and_position(stack):
    sol = "admin/my_repo/fs/Instabase Drive/broken"
    bad_refiner = {"fields": [{"name": "employer", "formula": "clean(scan_right(INPUT_COL, 'Employer:'))"},
                              {"name": "wages", "formula": "nubmer(INPUT_COL)", "type": "FLOAT"}]}
    write_solution(stack, sol, refiner=bad_refiner)
    binary = disk(stack, "/%s/%s/w2.ibflowbin" % (sol, FLOW_DIR))
    r = compile_call(stack, sol)
    assert_exact(r, 400, "bad_request", "modules/w2.ibrefiner: field 'wages': line 1 column 1: unknown function 'nubmer' (did you mean 'number'?)")
    assert not os.path.exists(binary)
    # an error in the flow file itself names it as the request did
    bad_flow = {"steps": [{"type": "process_files"}, {"type": "spilt"},
                          {"type": "apply_refiner", "program": "modules/w2.ibrefiner"}]}
    put(stack, "%s/%s/w2.ibflow" % (sol, FLOW_DIR), bad_flow)
    assert_exact(compile_call(stack, sol), 400, "bad_request",
                 "w2.ibflow: steps[1]: unknown step type 'spilt' (known: process_files, split, classify, "
                 "apply_refiner, validate)")
    put(stack, "%s/%s/w2.ibflow" % (sol, FLOW_DIR), '{"steps": [\n  {"type": "process_files"},,\n]}')
    assert_exact(compile_call(stack, sol), 400, "bad_request",
                 "w2.ibflow: invalid JSON at line 2 column 29: unexpected token near ','")
    # a refiner outside the flow's folder is refused, never read
    escaping = {"steps": [{"type": "process_files"}, {"type": "apply_refiner", "program": "../package.json"}]}
    put(stack, "%s/%s/w2.ibflow" % (sol, FLOW_DIR), escaping)
    assert_exact(compile_call(stack, sol), 400, "bad_request",
                 "w2.ibflow: apply_refiner: refiner path '../package.json' must be relative inside the content "
                 "folder (no '..', '.' or empty segments)")
    assert not os.path.exists(binary)


def test_compile_of_a_missing_flow_file(stack):
    sol = "admin/my_repo/fs/Instabase Drive/missing"
    write_solution(stack, sol)
    assert_exact(compile_call(stack, sol, rel_flow=FLOW_DIR + "/w3.ibflow"), 404, "not_found",
                 "settings.flow_file: '/%s/%s/w3.ibflow' does not exist" % (sol, FLOW_DIR))
    assert_exact(compile_call(stack, sol, rel_flow="Nowhere/w2.ibflow"), 404, "not_found",
                 "flow_project_root: '/%s/Nowhere' does not exist" % sol)
    assert_exact(compile_call(stack, sol, settings={"flow_file": "modules"}), 400, "bad_request",
                 "settings.flow_file: '/%s/%s/modules' is not a regular file" % (sol, FLOW_DIR))
    assert not os.path.exists(disk(stack, "/%s/%s/w3.ibflowbin" % (sol, FLOW_DIR)))


def test_compile_outside_the_callers_drive(stack):
    sol = "alice/repo/fs/Instabase Drive/out"
    write_solution(stack, sol, token=ALICE_TOKEN)
    r = compile_call(stack, sol, token=ALICE_TOKEN, predefined_binary_path="bob/repo/fs/Instabase Drive/w2.ibflowbin")
    assert_exact(r, 403, "forbidden",
                 "predefined_binary_path: '/bob/repo/fs/Instabase Drive/w2.ibflowbin' belongs to another user")
    assert not os.path.exists(disk(stack, "/bob/repo"))
    # ... nor reads another user's flow, nor names another user's solution in the URL
    write_solution(stack, "admin/theirs")
    assert_exact(compile_call(stack, "admin/theirs", token=ALICE_TOKEN), 403, "forbidden",
                 "solution_path: '/admin/theirs' belongs to another user")
    assert_exact(compile_call(stack, sol, token=ALICE_TOKEN, flow_project_root="admin/theirs/" + FLOW_DIR), 403,
                 "forbidden", "flow_project_root: '/admin/theirs/%s' belongs to another user" % FLOW_DIR)


def test_compile_refuses_bad_fields(stack):
    sol = "admin/my_repo/fs/Instabase Drive/fields"
    write_solution(stack, sol)
    assert_exact(compile_call(stack, sol, settings={"is_flow_v3": True}), 400, "bad_request",
                 "'settings.flow_file' is required")
    assert_exact(compile_call(stack, sol, settings={"flow_file": 7}), 400, "bad_request",
                 "'settings.flow_file' must be a string")
    assert_exact(compile_call(stack, sol, settings={"flow_file": "w2.ibflow", "is_flow_v3": "yes"}), 400,
                 "bad_request", "'settings.is_flow_v3' must be true or false")
    assert_exact(compile_call(stack, sol, settings={"flow_file": "../package.json"}), 400, "bad_request",
                 "settings.flow_file '../package.json' is refused: it escapes its folder")
    assert_exact(compile_call(stack, sol, binary_type="Multi Flow"), 400, "bad_request",
                 "binary_type 'Multi Flow' is not supported (ibsol compiles 'Single Flow')")
    assert_exact(compile_call(stack, sol, predefined_binary_path=sol + "/w2.bin"), 400, "bad_request",
                 "predefined_binary_path '/%s/w2.bin' must end in .ibflowbin (solution/create looks for it)" % sol)
    assert_error(compile_call(stack, sol, predefined_binary_path=sol + "/" + FLOW_DIR + "/modules/.ibflowbin/x"),
                 400, "bad_request", "must end in .ibflowbin")
    os.makedirs(disk(stack, "/%s/taken.ibflowbin/inner" % sol))
    assert_exact(compile_call(stack, sol, predefined_binary_path=sol + "/taken.ibflowbin"), 400, "bad_request",
                 "predefined_binary_path: '/%s/taken.ibflowbin' is a folder" % sol)
    assert_exact(compile_call(stack, sol, flow_project_root=7), 400, "bad_request",
                 "'flow_project_root' must be a string")
    # dot segments in the URL reach the path rules as sent (clients normalise a literal "/../" away)
    r = stack.post("/api/v1/flow_binary/compile/admin/%2E%2E/etc", {"flow_project_root": sol, "settings": {"flow_file": "w2.ibflow"}})
    assert_exact(r, 400, "bad_request", "solution_path: path 'admin/../etc' has a '..' segment")
    r = stack.post("/api/v1/flow_binary/compile/admin/x%00y", {"flow_project_root": sol, "settings": {"flow_file": "w2.ibflow"}})
    assert_exact(r, 400, "bad_request", "solution_path: path 'admin/x' has a NUL byte")
    assert_exact(compile_call(stack, "admin/nothing-here"), 404, "not_found",
                 "solution_path: '/admin/nothing-here' does not exist")
    r = stack.get("/api/v1/flow_binary/compile/" + quote(sol))
    assert r.status_code == 405, r.text
    assert stack.get("/healthz").status_code == 200


def zip_of(stack, drive_path):
    return zipfile.ZipFile(io.BytesIO(open(disk(stack, drive_path), "rb").read()))


def test_package_from_a_binary_publishes_installs_and_runs_like_one_from_flow_json(stack):
    sol = "admin/my_repo/fs/Instabase Drive/e2e"
    write_solution(stack, sol)
    assert compile_call(stack, sol).status_code == 200
    r = stack.post("/api/v1/solution/create", {"content_folder": sol, "output_folder": sol + "/build"})
    assert r.status_code == 200, r.text
    made = r.json()
    assert made["ibsolution_path"] == "/%s/build/w2_reader-2.1.0.ibsolution" % sol
    z = zip_of(stack, made["ibsolution_path"])
    assert set(z.namelist()) == {"package.json", "w2_reader.ibflowbin", FLOW_DIR + "/w2.ibflow",
                                 FLOW_DIR + "/w2.ibflowbin", FLOW_DIR + "/modules/w2.ibrefiner"}
    stamped = json.loads(z.read("w2_reader.ibflowbin"))
    assert stamped["solution"] == {"name": "w2_reader", "version": "2.1.0"}

    # The same flow as flow.json in a classic content folder compiles to the very same packaged binary.
    classic = "admin/my_repo/fs/Instabase Drive/classic"
    put(stack, classic + "/package.json", MANIFEST)
    put(stack, classic + "/flow.json", FLOW)
    put(stack, classic + "/modules/w2.ibrefiner", REFINER)
    r = stack.post("/api/v1/solution/create", {"content_folder": classic, "output_folder": classic + "/build"})
    assert r.status_code == 200, r.text
    assert zip_of(stack, r.json()["ibsolution_path"]).read("w2_reader.ibflowbin") == z.read("w2_reader.ibflowbin")

    r = stack.post("/api/v1/marketplace/publish", {"ibsolution_path": made["ibsolution_path"]})
    assert r.status_code == 200, r.text
    r = stack.post("/api/v1/marketplace/install", {"name": "w2_reader", "version": "2.1.0"})
    assert r.status_code == 200, r.text
    files = [{"file_name": n, "file_content": base64.b64encode(t.encode()).decode()} for n, t in sorted(DOCS.items())]
    r = stack.post("/api/v1/solution/run_sync", {"name": "w2_reader", "version": "2.1.0", "files": files})
    assert r.status_code == 200, r.text
    records = r.json()["records"]
    assert [rec["file_name"] for rec in records] == ["w2-acme.txt", "w2-globex.txt"]
    got = [{f["key"]: f["value"] for f in rec["results"]} for rec in records]
    assert got == [{"employer": "ACME Corp", "wages": 52300.15, "tax_year": "2025"},
                   {"employer": "Globex", "wages": 81000.0, "tax_year": "2025"}]
    assert all(rec["validation"] == [] for rec in records), records


def test_content_folder_with_two_binaries_or_none(stack):
    sol = "admin/my_repo/fs/Instabase Drive/two"
    write_solution(stack, sol)
    assert compile_call(stack, sol).status_code == 200
    assert compile_call(stack, sol, predefined_binary_path=sol + "/copy/other.ibflowbin").status_code == 200
    out = sol + "/build"
    r = stack.post("/api/v1/solution/create", {"content_folder": sol, "output_folder": out})
    assert_exact(r, 400, "bad_request",
                 "content_folder '/%s' holds 2 compiled flows ('%s/w2.ibflowbin' and 'copy/other.ibflowbin'); a "
                 "package takes exactly one (or a flow.json)" % (sol, FLOW_DIR))
    assert not os.path.exists(disk(stack, out))
    # with flow.json beside them, flow.json is what gets compiled
    put(stack, sol + "/flow.json", FLOW)
    put(stack, sol + "/modules/w2.ibrefiner", REFINER)
    r = stack.post("/api/v1/solution/create", {"content_folder": sol, "output_folder": out})
    assert r.status_code == 200, r.text

    none = "admin/my_repo/fs/Instabase Drive/none"
    put(stack, none + "/package.json", MANIFEST)
    put(stack, none + "/" + FLOW_DIR + "/w2.ibflow", FLOW)
    r = stack.post("/api/v1/solution/create", {"content_folder": none, "output_folder": none + "/build"})
    assert_exact(r, 400, "bad_request",
                 "content_folder '/%s' has neither flow.json nor a compiled flow (.ibflowbin file)" % none)
    assert not os.path.exists(disk(stack, none + "/build"))


def test_content_folder_with_a_binary_that_is_not_one(stack):
    sol = "admin/my_repo/fs/Instabase Drive/fake"
    put(stack, sol + "/package.json", MANIFEST)
    put(stack, sol + "/flows/w2.ibflowbin", "not a compiled flow")
    r = stack.post("/api/v1/solution/create", {"content_folder": sol, "output_folder": sol + "/build"})
    assert_exact(r, 400, "bad_request",
                 "content_folder '/%s': 'flows/w2.ibflowbin' is not a valid compiled flow: compiled flow "
                 "(.ibflowbin): ibflowbin: invalid JSON at line 1 column 3: '[' or '{' expected near 'not'" % sol)
    # a binary whose stored formula tree was tampered with is refused as the marketplace would
    write_solution(stack, sol)
    assert compile_call(stack, sol).status_code == 200
    path = disk(stack, "/%s/%s/w2.ibflowbin" % (sol, FLOW_DIR))
    doc = json.load(open(path))
    doc["programs"]["modules/w2.ibrefiner"]["fields"][0]["formula"] = "FILENAME"
    with open(path, "w") as f:
        json.dump(doc, f)
    os.remove(disk(stack, sol + "/flows/w2.ibflowbin"))
    r = stack.post("/api/v1/solution/create", {"content_folder": sol, "output_folder": sol + "/build"})
    assert_error(r, 400, "bad_request", "'%s/w2.ibflowbin' is not a valid compiled flow: " % FLOW_DIR,
                 "field 'employer': stored tree does not match its formula")
    assert not os.path.exists(disk(stack, sol + "/build"))
