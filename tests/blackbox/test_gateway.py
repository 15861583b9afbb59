"""The gateway as a user meets it: auth, body validation, limits, routing, health, metrics, and a stopped
daemon turning into a 503 within the timeout, then recovering by itself."""
import time

import pytest
import requests

from conftest import ADMIN_TOKEN, ALICE_TOKEN, assert_error


def test_missing_and_unknown_token(stack):
    r = stack.post("/solution/create", {"content_folder": "/admin/a", "output_folder": "/admin/b"}, token=None)
    assert_error(r, 401, "unauthorized", "missing 'Authorization: Bearer <token>' header")
    assert r.headers.get("WWW-Authenticate") == "Bearer"
    r = stack.post("/api/v1/solution/create", {}, token="not-a-token")
    assert_error(r, 401, "unauthorized", "unknown token")
    r = stack.call("GET", "/marketplace/list", token=None, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert_error(r, 401, "unauthorized", "missing")


def test_body_not_json(stack):
    r = stack.post("/solution/create", data=b"{not json")
    assert_error(r, 400, "bad_request", "request body is not valid JSON")
    r = stack.post("/solution/create", data=b"")
    assert_error(r, 400, "bad_request", "request body is not valid JSON")
    r = stack.post("/solution/create", data=b'{"a":1,"a":2}')
    assert_error(r, 400, "bad_request", "duplicate object key")


def test_body_not_object(stack):
    for body in (b"[1,2]", b'"text"', b"3", b"null"):
        r = stack.post("/api/v1/solution/create", data=body)
        assert_error(r, 400, "bad_request", "request body must be a JSON object")


def test_required_field_missing_or_wrong_type(stack):
    r = stack.post("/solution/create", {"output_folder": "/admin/out"})
    assert_error(r, 400, "bad_request", "'content_folder' is required")
    r = stack.post("/solution/create", {"content_folder": ["/admin/x"], "output_folder": "/admin/out"})
    assert_error(r, 400, "bad_request", "'content_folder' must be a string")
    r = stack.post("/marketplace/install", {"name": "x", "version": 1})
    assert_error(r, 400, "bad_request", "'version' must be a string")
    r = stack.post("/marketplace/publish", {"ibsolution_path": ""})
    assert_error(r, 400, "bad_request", "'ibsolution_path' must not be empty")


def test_body_over_the_limit(stack_factory):
    s = stack_factory({"IBSOL_MAX_BODY": "4096"})
    r = s.post("/solution/create", data=b"{" + b" " * 5000 + b"}")
    assert_error(r, 413, "too_large", "5002 bytes passes the limit of 4096 bytes")
    # chunked: no Content-Length, the limit still holds while streaming
    def gen():
        yield b'{"content_folder":"'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'
    r = s.call("POST", "/solution/create", data=gen())
    assert_error(r, 413, "too_large", "passes the limit of 4096 bytes")
    assert s.get("/healthz", token=None).status_code == 200


def test_routing(stack):
    r = stack.get("/no/such/thing")
    assert_error(r, 404, "not_found", "no such endpoint: GET /no/such/thing")
    r = stack.get("/solution/create")
    assert r.status_code == 405
    assert r.json()["msg"] == "method GET is not allowed on /solution/create"
    # both base paths answer
    assert stack.get("/marketplace/list").status_code == stack.get("/api/v1/marketplace/list").status_code


def test_healthz_and_metrics(stack):
    r = stack.get("/healthz", token=None)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "OK"
    assert body["services"] == {"packager": "up", "marketplace": "up", "runner": "up"}
    stack.post("/solution/create", {"output_folder": "/admin/out"})
    r = stack.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert 'ibsol_http_requests_total{route="solution/create",code="400"}' in r.text
    assert 'ibsol_http_request_duration_ms_bucket{route="solution/create",le="+Inf"}' in r.text
    assert stack.get("/metrics", token=None).status_code == 401


def test_request_id_is_echoed(stack):
    r = stack.post("/marketplace/install", {"name": "no_such", "version": "1.0.0"}, headers={"X-Request-Id": "trace-42"})
    assert r.headers["X-Request-Id"] == "trace-42"
    # the gateway logs the line after the reply is sent: give it a moment
    deadline = time.time() + 5
    while "rid=trace-42" not in stack.log("gateway") and time.time() < deadline:
        time.sleep(0.05)
    assert "rid=trace-42" in stack.log("gateway")
    # the id travels with the envelope: the marketplace logs it too
    while "rid=trace-42" not in stack.log("marketplace") and time.time() < deadline:
        time.sleep(0.05)
    assert "rid=trace-42" in stack.log("marketplace")
    r = stack.get("/marketplace/list")
    assert len(r.headers["X-Request-Id"]) == 16


def test_stopped_daemon_is_503_then_recovers(stack_factory):
    s = stack_factory()
    assert s.stop("marketplace") == 0
    t0 = time.time()
    r = s.get("/marketplace/list")
    elapsed = time.time() - t0
    assert_error(r, 503, "unavailable", "the marketplace is not reachable")
    assert elapsed < 5, elapsed
    r = s.get("/healthz", token=None)
    assert r.status_code == 503
    assert r.json()["services"]["marketplace"] == "down"
    assert r.json()["msg"] == "not reachable: marketplace"
    s.start("marketplace")
    deadline = time.time() + 15
    while time.time() < deadline:
        r = s.get("/marketplace/list")
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "OK"


def test_tokens_file_is_reloaded(stack_factory):
    s = stack_factory()
    with open(s.data + "/tokens", "a") as f:
        f.write("carol-token-0123456789abcdef carol user\n")
    time.sleep(0.05)
    r = s.get("/marketplace/list", token="carol-token-0123456789abcdef")
    assert r.status_code == 200, r.text
