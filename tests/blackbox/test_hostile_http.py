"""Hostile clients against the gateway: JSON nested to blow the stack, idle and slow connections that would hold
every HTTP thread, and request bodies whose length is missing or contradictory. The gateway answers each with a
clear error and keeps serving everyone else."""
import json
import socket
import time

import pytest
import requests

from conftest import ADMIN_TOKEN, assert_error, wait_for

MAX_DEPTH = 24  # IB_JSON_MAX_DEPTH
CAP = 16  # IBSOL_HTTP_MAX_PER_CLIENT's default


def nested(depth, leaf="1"):
    """JSON text of arrays nested `depth` deep around leaf."""
    return "[" * depth + leaf + "]" * depth


def test_json_nested_1000_deep_is_refused_and_the_gateway_lives(stack):
    body = '{"name": "x", "version": %s}' % nested(1000)
    r = stack.post("/marketplace/install", data=body.encode())
    assert_error(r, 400, "bad_request", "request body: JSON nested deeper than 24 levels (line 1, column 49)")
    body = '{"name": %s, "node_type": "folder"}' % nested(1000)
    r = stack.post("/api/v2/files/admin/deep", data=body.encode())
    assert_error(r, 400, "bad_request", "request body: JSON nested deeper than 24 levels")
    # objects too, and a body that is all brackets
    r = stack.post("/jobs/cancel", data=('{"a":' * 1000 + "1" + "}" * 1000).encode())
    assert_error(r, 400, "bad_request", "JSON nested deeper than 24 levels")
    r = stack.post("/jobs/cancel", data=b"[" * 100000)
    assert_error(r, 400, "bad_request", "JSON nested deeper than 24 levels")
    assert stack.get("/healthz", token=None).status_code == 200


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 33, 48, 64])
def test_json_deeper_than_the_wire_is_refused_at_the_gateway(stack, depth):
    # the body object is level 1: an unknown field holding depth-1 arrays makes the body `depth` deep
    body = '{"name": "nosuch", "version": "1.0.0", "extra": %s}' % nested(depth - 1)
    r = stack.post("/marketplace/install", data=body.encode())
    assert_error(r, 400, "bad_request", "JSON nested deeper than 24 levels")


def test_json_at_the_limit_reaches_the_daemon_and_unknown_fields_are_ignored(stack):
    body = '{"name": "nosuch", "version": "1.0.0", "extra": %s}' % nested(MAX_DEPTH - 1)
    r = stack.post("/marketplace/install", data=body.encode())
    # the marketplace's own answer: the envelope crossed the wire, the unknown field was ignored
    assert_error(r, 404, "not_found", "nosuch")
    assert "msgpack" not in r.text


def test_a_deeply_nested_formula_still_packages_and_runs(stack):
    # the bound is for text from outside; the compiled flow holds formula trees (two JSON levels per formula
    # level), so a formula nested 60 deep (the language allows 64) must still decode in the runner
    formula = "'x'"
    for _ in range(60):
        formula = "upper(%s)" % formula
    files = {"package.json": {"name": "deepf", "version": "1.0.0", "short_description": "deep formula",
                              "authors": ["tests"]},
             "flow.json": {"steps": [{"type": "process_files"},
                                     {"type": "apply_refiner", "programs": {"*": "refiners/r.ibrefiner"}}]},
             "refiners/r.ibrefiner": {"fields": [{"name": "total", "formula": formula}]}}
    for name, value in files.items():
        stack.put_file("/admin/deepf/" + name, json.dumps(value).encode())
    r = stack.post("/solution/create", {"content_folder": "/admin/deepf", "output_folder": "/admin/deepf-build"})
    assert r.status_code == 200, r.text
    r = stack.post("/solution/run_sync", {"solution_path": r.json()["ibsolution_path"],
                                          "files": [{"file_name": "a.txt", "file_content": "aGVsbG8K"}]})
    assert r.status_code == 200, r.text
    assert r.json()["records"][0]["results"][0]["value"] == "X"


# --- idle, slow and greedy connections ------------------------------------------------------------------------

def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def fresh_get(s, path, token=None):
    """A GET on a new connection (the stack's session could reuse one accepted before the load)."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    return requests.get(s.url + path, headers=headers, timeout=10)


def open_from(addr, port, first_bytes=b""):
    c = socket.socket()
    c.bind((addr, 0))
    c.connect(("127.0.0.1", port))
    if first_bytes:
        c.sendall(first_bytes)
    return c


def read_reply(c, timeout):
    """What the server sent before closing, or None if it still holds the connection open after timeout."""
    c.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = c.recv(4096)
            if not chunk:
                return data
            data += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return data


def test_idle_and_half_sent_connections_do_not_starve_others(stack_factory):
    s = stack_factory({"IBSOL_HTTP_READ_TIMEOUT_MS": "4000"})
    silent, half = [], []
    try:
        # 200 connections that never send a byte, from the same address as the checks below
        silent = [open_from("127.0.0.1", s.port) for _ in range(200)]
        # 200 that send half a request header (slowloris), from another loopback address
        half = [open_from("127.0.0.2", s.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(200)]
        # the first 16 (the default cap) keep their connections, waiting for the rest of their headers; every
        # other one is told why at once, and closed
        replies = [read_reply(c, 2.0 if i >= CAP else 0.1) for i, c in enumerate(half)]
        assert all(r is None for r in replies[:CAP]), replies[:CAP]
        for r in replies[CAP:]:
            assert r is not None and r.startswith(b"HTTP/1.1 503 "), r
        body = json.loads(replies[CAP].split(b"\r\n\r\n", 1)[1])
        assert body == {"status": "ERROR", "code": "unavailable",
                        "msg": "too many connections from 127.0.0.2: at most 16 at once (IBSOL_HTTP_MAX_PER_CLIENT)"}
        # under that load, health and an authenticated call answer at once (a starved gateway takes seconds;
        # the best of three keeps a busy test machine's scheduling out of the verdict)
        for path, token in (("/healthz", None), ("/marketplace/list", ADMIN_TOKEN)):
            took = []
            for _ in range(3):
                r, t = timed(lambda: fresh_get(s, path, token))
                assert r.status_code == 200, r.text
                took.append(t)
            assert min(took) < 0.1, "%s took %s s" % (path, ["%.3f" % t for t in took])
        # the half-sent headers do not hold their threads past the read timeout
        t0 = time.monotonic()
        for c in half[:CAP]:
            assert read_reply(c, 8.0) is not None
        assert time.monotonic() - t0 < 6.0
    finally:
        for c in silent + half:
            c.close()
    # the closed silent ones reach the gateway now (their FIN is their first byte) and are let go at once
    wait_for("healthz after the load", lambda: fresh_get(s, "/healthz").status_code == 200, timeout=10)


def put_raw(s, path, head_extra, body_parts, pause=0.0, version="1.1"):
    """A PUT sent by hand: headers, then the body parts with `pause` s between them; returns the reply bytes."""
    c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    c.sendall(("PUT /api/v2/files%s HTTP/%s\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n"
               % (path, version, ADMIN_TOKEN, head_extra)).encode())
    for part in body_parts:
        time.sleep(pause)
        c.sendall(part)
    reply = read_reply(c, 20.0)
    c.close()
    return reply


def status_and_body(reply):
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), (json.loads(body) if body.strip() else None)


def test_slow_but_steady_upload_passes_and_a_stalled_one_ends(stack_factory):
    s = stack_factory({"IBSOL_HTTP_READ_TIMEOUT_MS": "700"})
    # 2 s in all, far past the read timeout, but never 700 ms without a byte
    parts = [b"%02d-slow-bytes\n" % i for i in range(8)]
    total = b"".join(parts)
    reply = put_raw(s, "/admin/slow.txt", "Content-Length: %d\r\n" % len(total), parts, pause=0.25)
    assert status_and_body(reply)[0] == 204, reply
    assert s.get("/api/v2/files/admin/slow.txt").content == total
    # a body that stops: the request ends after the timeout, and nothing is written
    reply = put_raw(s, "/admin/stalled.txt", "Content-Length: 100\r\n", [b"x" * 10])
    st, body = status_and_body(reply)
    assert st == 400 and "ended before its Content-Length" in body["msg"], reply
    r = s.get("/api/v2/files/admin/stalled.txt")
    assert_error(r, 404, "not_found")



# --- bodies whose length is missing or said twice ---------------------------------------------------------------

def test_http10_put_without_length_is_411_and_writes_nothing(stack):
    # HTTP/1.0 has no chunking; civetweb would take the body as empty and the PUT would leave an empty file
    reply = put_raw(stack, "/admin/h10.txt", "", [b"some bytes"], version="1.0")
    st, body = status_and_body(reply)
    assert st == 411, reply
    assert body["code"] == "bad_request" and "Content-Length header" in body["msg"], body
    assert_error(stack.get("/api/v2/files/admin/h10.txt"), 404, "not_found")
    # PATCH (append) the same
    c = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
    c.sendall(("PATCH /api/v2/files/admin/h10.txt HTTP/1.0\r\nAuthorization: Bearer %s\r\nIB-Cursor: 0\r\n\r\nxyz"
               % ADMIN_TOKEN).encode())
    assert status_and_body(read_reply(c, 20.0))[0] == 411
    c.close()
    assert_error(stack.get("/api/v2/files/admin/h10.txt"), 404, "not_found")


@pytest.mark.parametrize("framing, why", [
    ("Content-Length: 5\r\nContent-Length: 5\r\n", "more than one Content-Length header"),
    ("Content-Length: 5\r\nContent-Length: 40\r\n", "more than one Content-Length header"),
    ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "both Content-Length and Transfer-Encoding headers"),
    ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "both Content-Length and Transfer-Encoding headers"),
])
def test_ambiguous_body_length_is_400_and_the_connection_closes(stack, framing, why):
    # what follows the first 5 bytes would be a second request to a server that trusts one of the lengths
    smuggled = b"DELETE /api/v2/files/admin/keep.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (
        ADMIN_TOKEN.encode())
    stack.put_file("/admin/keep.txt", b"keep")
    for method, path in (("PUT", "/api/v2/files/admin/amb.txt"), ("POST", "/jobs/cancel")):
        c = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
        c.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n"
                   % (method, path, ADMIN_TOKEN, framing)).encode() + b"hello" + smuggled)
        reply = read_reply(c, 20.0)  # the connection is closed after the one reply
        c.close()
        assert reply is not None and reply.count(b"HTTP/1.1 ") == 1, reply
        st, body = status_and_body(reply)
        assert st == 400 and body["code"] == "bad_request", reply
        assert body["msg"] == "the request has %s: its body's length is ambiguous" % why
    assert_error(stack.get("/api/v2/files/admin/amb.txt"), 404, "not_found")
    assert stack.get("/api/v2/files/admin/keep.txt").content == b"keep"
