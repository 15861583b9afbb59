"""docs/openapi.yaml, the API reference: a structurally valid OpenAPI 3.1 document, served unchanged at
/openapi.json, and in step with the gateway's real route table (`ibsol-gateway --print-routes`): every served
route is documented, every documented route is served, and each op's fields are the documented ones."""
import copy
import json
import os
import re
import subprocess

import jsonschema
import pytest
import yaml

from conftest import ADMIN_TOKEN, BIN, SOURCE, binary

SPEC = os.path.join(SOURCE, "docs", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Every route answers at /api/v1/<path>, /api/v2/<path> and /<path> (gateway/routes.c); the document lists each
# once, under one of them.
PREFIXES = ("/api/v1/", "/api/v2/", "/")
JSON_TYPES = {"string": "string", "object": "object", "array": "array", "boolean": "boolean", "integer": "integer",
              "string|array": ["string", "array"]}


def load_spec():
    with open(SPEC, encoding="utf-8") as f:
        return yaml.safe_load(f)


def print_routes():
    r = subprocess.run([binary("gateway"), "--print-routes"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return json.loads(r.stdout)


def resolve(doc, node):
    """Follows a local $ref ("#/components/...") to what it names; None when it names nothing."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return None
        node = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
    return node


# --- structure --------------------------------------------------------------------------------------------------

def structure_problems(doc):
    """What keeps doc from being a well-formed OpenAPI 3.1 document, as sentences (empty when none). No OpenAPI
    validator is packaged in Debian 12: this checks the rules of the specification this document can break, and
    every schema object against JSON Schema 2020-12, the dialect OpenAPI 3.1 uses."""
    bad = []
    if not re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi", ""))):
        bad.append("openapi: must be 3.1.x")
    info = doc.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str) or not isinstance(info.get("version"), str):
        bad.append("info: needs a title and a version, both strings")
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    for name, s in schemes.items():
        if s.get("type") not in ("apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"):
            bad.append("securitySchemes.%s: type %r" % (name, s.get("type")))

    def check_security(where, reqs):
        for req in reqs or []:
            for name in req:
                if name not in schemes:
                    bad.append("%s: security names %r, not in components.securitySchemes" % (where, name))

    check_security("security", doc.get("security"))
    tags = {t["name"] for t in doc.get("tags", [])}
    op_ids = set()

    def walk_refs(node, where):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str) and resolve(doc, {"$ref": node["$ref"]}) is None:
                bad.append("%s: $ref %s names nothing" % (where, node["$ref"]))
            for k, v in node.items():
                walk_refs(v, "%s.%s" % (where, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk_refs(v, "%s[%d]" % (where, i))

    walk_refs(doc, "")
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        return bad + ["paths: missing or empty"]
    for path, item in paths.items():
        if not path.startswith("/"):
            bad.append("paths: %r does not start with /" % path)
        extra = set(item) - set(METHODS) - {"summary", "description", "servers", "parameters", "$ref"}
        if extra:
            bad.append("%s: unknown keys %s" % (path, sorted(extra)))
        templates = set(re.findall(r"\{([^}]+)\}", path))
        common = [resolve(doc, p) for p in item.get("parameters", [])]
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = "%s %s" % (method.upper(), path)
            params = common + [resolve(doc, p) for p in op.get("parameters", [])]
            for p in params:
                if not p or not isinstance(p.get("name"), str) or p.get("in") not in ("query", "header", "path",
                                                                                     "cookie"):
                    bad.append("%s: a parameter without name or a valid 'in': %r" % (where, p))
                elif ("schema" in p) == ("content" in p):
                    bad.append("%s: parameter %s needs exactly one of schema and content" % (where, p["name"]))
                elif p["in"] == "path" and p.get("required") is not True:
                    bad.append("%s: path parameter %s must be required: true" % (where, p["name"]))
            in_path = {p["name"] for p in params if p and p.get("in") == "path"}
            if in_path != templates:
                bad.append("%s: path parameters %s, template names %s" % (where, sorted(in_path), sorted(templates)))
            if op.get("operationId") in op_ids:
                bad.append("%s: operationId %s used twice" % (where, op.get("operationId")))
            op_ids.add(op.get("operationId"))
            for t in op.get("tags", []):
                if t not in tags:
                    bad.append("%s: tag %r is not declared under tags" % (where, t))
            check_security(where, op.get("security"))
            body = resolve(doc, op.get("requestBody"))
            if "requestBody" in op and (not isinstance(body, dict) or not body.get("content")):
                bad.append("%s: requestBody without content" % where)
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                bad.append("%s: no responses" % where)
                continue
            for code, resp in responses.items():
                if not (code == "default" or re.fullmatch(r"[1-5](\d\d|XX)", str(code))):
                    bad.append("%s: response key %r is not a status code" % (where, code))
                r = resolve(doc, resp)
                if not isinstance(r, dict) or not isinstance(r.get("description"), str):
                    bad.append("%s: response %s has no description" % (where, code))
    # Every schema object is a JSON Schema 2020-12 schema.
    validator = jsonschema.Draft202012Validator

    def walk_schemas(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "schema" or (where.endswith("components.schemas")):
                    try:
                        validator.check_schema(v)
                    except jsonschema.SchemaError as e:
                        bad.append("%s.%s: not a JSON Schema: %s" % (where, k, e.message))
                walk_schemas(v, "%s.%s" % (where, k) if where else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk_schemas(v, "%s[%d]" % (where, i))

    walk_schemas(doc, "")
    return bad


def test_document_is_openapi_31():
    assert structure_problems(load_spec()) == []


def test_structure_check_finds_faults():
    """The check above is not blind: each fault planted in a copy of the document is reported."""
    doc = load_spec()
    faults = {
        "openapi: must be 3.1.x": lambda d: d.update(openapi="3.0.3"),
        "names nothing": lambda d: d["paths"]["/api/v1/solution/create"]["post"]["responses"].update(
            {"418": {"$ref": "#/components/responses/Teapot"}}),
        "path parameters": lambda d: d["paths"]["/api/v2/files/{path}"].pop("parameters"),
        "has no description": lambda d: d["paths"]["/api/v1/jobs/list"]["get"]["responses"].update({"299": {}}),
        "not a JSON Schema": lambda d: d["components"]["schemas"].update(Bad={"type": 12}),
        "is not declared under tags": lambda d: d["paths"]["/api/v1/jobs/list"]["get"].update(tags=["nope"]),
    }
    for fragment, plant in faults.items():
        d = copy.deepcopy(doc)
        plant(d)
        problems = structure_problems(d)
        assert any(fragment in p for p in problems), (fragment, problems)


# --- served -----------------------------------------------------------------------------------------------------

def test_served_document_is_the_yaml(stack):
    want = load_spec()
    for path in ("/openapi.json", "/api/v1/openapi.json"):
        r = stack.get(path, token=None)  # documentation: no token
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/json"
        assert r.json() == want
        assert r.json()["info"]["version"] == want["info"]["version"]
    r = stack.post("/openapi.json", {})
    assert r.status_code == 405 and r.json()["msg"] == "method POST is not allowed on /openapi.json"


def test_document_version_is_the_project_version():
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        version = re.search(r"project\(ibsol VERSION ([0-9.]+)", f.read()).group(1)
    assert load_spec()["info"]["version"] == version, "bump info.version in docs/openapi.yaml with project()"


# --- in step with the route table -------------------------------------------------------------------------------

def route_of(doc_path, routes_by_path):
    """The route-table path a documented path is served as: the path without one of the prefixes."""
    for prefix in PREFIXES:
        if doc_path.startswith(prefix) and doc_path[len(prefix):] in routes_by_path:
            return doc_path[len(prefix):]
    return None


def drift(doc, routes):
    """Where the document and the route table disagree, as sentences (empty when they agree)."""
    bad = []
    served = {}
    for rt in routes:
        served.setdefault(rt["path"], {})[rt["method"].lower()] = rt
    documented = set()
    for doc_path, item in doc["paths"].items():
        path = route_of(doc_path, served)
        for method in METHODS:
            if method not in item:
                continue
            if path is None or method not in served[path]:
                bad.append("%s %s is documented but the gateway has no such route" % (method.upper(), doc_path))
                continue
            if (path, method) in documented:
                bad.append("%s %s is documented twice" % (method.upper(), doc_path))
            documented.add((path, method))
            bad += field_drift(doc, doc_path, item, method, served[path][method])
    for path, by_method in served.items():
        for method in by_method:
            if (path, method) not in documented:
                bad.append("%s /%s is served but not in docs/openapi.yaml" % (method.upper(), path))
    return bad


def field_drift(doc, doc_path, item, method, rt):
    """The op's field table (ib_ops.c) against the documented query parameters or JSON body."""
    if "fields" not in rt:
        return []
    where = "%s %s" % (method.upper(), doc_path)
    op = item[method]
    fields = {f["name"]: f for f in rt["fields"]}
    if rt["in"] == "query":
        params = [resolve(doc, p) for p in item.get("parameters", []) + op.get("parameters", [])]
        documented = {p["name"]: p for p in params if p.get("in") == "query"}
        required = {n for n, p in documented.items() if p.get("required")}
        types = {n: p.get("schema", {}).get("type") for n, p in documented.items()}
    else:
        body = resolve(doc, op.get("requestBody")) or {}
        schema = resolve(doc, body.get("content", {}).get("application/json", {}).get("schema")) or {}
        documented = schema.get("properties", {})
        required = set(schema.get("required", []))
        types = {n: (resolve(doc, s) or {}).get("type") for n, s in documented.items()}
    bad = []
    for name, f in fields.items():
        if name not in documented:
            bad.append("%s: field %s of the op is not documented" % (where, name))
        elif types[name] is not None and types[name] != JSON_TYPES[f["type"]]:
            bad.append("%s: field %s is %s in the op, %s in the document" % (where, name, f["type"], types[name]))
    want_required = {n for n, f in fields.items() if f["required"]}
    if required != want_required:
        bad.append("%s: required fields %s in the document, %s in the op" % (where, sorted(required),
                                                                             sorted(want_required)))
    return bad


def test_print_routes_is_the_only_extra_argument():
    for args, bad in ((["--wrokers=3"], "--wrokers=3"), (["--print-routes", "x"], "x"),
                      (["--print-routes", "--print-routes"], "--print-routes")):
        r = subprocess.run([binary("gateway"), *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and r.stdout == "", (args, r.stdout)
        assert "unknown argument '%s' (see --help)" % bad in r.stderr, (args, r.stderr)


def test_document_and_route_table_agree():
    assert drift(load_spec(), print_routes()) == []


def test_drift_is_found_both_ways():
    """The comparison is not blind: a route missing from either side, or a field that differs, is reported."""
    doc, routes = load_spec(), print_routes()
    d = copy.deepcopy(doc)
    del d["paths"]["/api/v1/jobs/cancel"]
    assert drift(d, routes) == ["POST /jobs/cancel is served but not in docs/openapi.yaml"]
    d = copy.deepcopy(doc)
    d["paths"]["/api/v1/jobs/retry"] = copy.deepcopy(d["paths"]["/api/v1/jobs/cancel"])
    assert drift(d, routes) == ["POST /api/v1/jobs/retry is documented but the gateway has no such route"]
    assert drift(doc, [r for r in routes if r["path"] != "version"]) == [
        "GET /api/v1/version is documented but the gateway has no such route"]
    d = copy.deepcopy(doc)
    d["paths"]["/api/v1/solution/create"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "required"] = ["content_folder"]
    assert drift(d, routes) == ["POST /api/v1/solution/create: required fields ['content_folder'] in the document, "
                                "['content_folder', 'output_folder'] in the op"]
    d = copy.deepcopy(doc)
    d["paths"]["/api/v1/jobs/list"]["get"]["parameters"].pop()
    assert drift(d, routes) == ["GET /api/v1/jobs/list: field cursor of the op is not documented"]


def test_documented_routes_answer(stack):
    """Each documented operation reaches its handler on a live gateway: never "no such endpoint", never 405. The
    requests are harmless (empty bodies, paths under a scratch folder): handlers answer 4xx, or 2xx."""
    doc = load_spec()
    values = {"path": "admin/openapi-probe/a.txt", "solution_path": "admin/openapi-probe", "file": "no-such-file.js"}
    for doc_path, item in doc["paths"].items():
        url = re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], doc_path)
        for method in METHODS:
            if method not in item:
                continue
            kw = {"data": b"{}"} if method in ("post",) else {"data": b""} if method in ("put", "patch") else {}
            if "events" in url:
                kw["params"] = {"job_id": "no-such-job"}
            r = stack.session.request(method.upper(), stack.url + url, timeout=30,
                                      headers={"Authorization": "Bearer " + ADMIN_TOKEN, "IB-Cursor": "0"}, **kw)
            where = "%s %s -> %d %s" % (method.upper(), url, r.status_code, r.text[:200])
            assert r.status_code != 405, where
            assert r.status_code < 500 or r.status_code == 503, where
            assert "no such endpoint" not in r.text, where
            if method == "head":  # no body to read the reason in: it must answer as GET does
                g = stack.session.get(stack.url + url, headers={"Authorization": "Bearer " + ADMIN_TOKEN}, timeout=30)
                assert r.status_code == g.status_code and "no such endpoint" not in g.text, where


def test_undocumented_methods_are_refused(stack):
    """The other direction on a live gateway: a method a documented path does not list is a 405 there, so no
    handler answers more than the document says (a URL another documented template also matches is left out:
    GET .../drives/a.txt/copy is a GET of drives/{path})."""
    doc = load_spec()
    values = {"path": "admin/openapi-probe/b.txt", "solution_path": "admin/openapi-probe", "file": "app.js"}
    patterns = {p: re.compile("^" + re.sub(r"\\\{[^}]+\\\}", ".+", re.escape(p)) + "$") for p in doc["paths"]}
    for doc_path, item in doc["paths"].items():
        url = re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], doc_path)
        for method in ("get", "head", "put", "post", "patch", "delete", "options"):
            if method in item or any(method in doc["paths"][o] and pat.match(url)
                                     for o, pat in patterns.items() if o != doc_path):
                continue
            r = stack.session.request(method.upper(), stack.url + url, data=b"{}", timeout=30,
                                      headers={"Authorization": "Bearer " + ADMIN_TOKEN})
            assert r.status_code == 405, "%s %s -> %d %s" % (method.upper(), url, r.status_code, r.text[:200])

