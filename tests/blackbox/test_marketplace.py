"""Black-box tests of the marketplace: publish, install, list, info, uninstall, unpublish through the gateway,
with the stored and installed folders checked on disk. Files are put on the drive directly on disk (as the
drive is just folders), so these tests depend on the packager but not on the files API."""
import concurrent.futures
import hashlib
import io
import json
import os
import zipfile

import requests

from conftest import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, assert_error

REFINER = {"fields": [{"name": "total", "formula": "regex(INPUT_COL, 'Total:\\s*([0-9.,]+)')"}]}
FLOW = {"steps": [{"type": "process_files"}, {"type": "apply_refiner", "program": "refiners/main.ibrefiner"}]}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def disk(stack, drive_path):
    return os.path.join(stack.data, "drive", drive_path.lstrip("/"))


def put(stack, drive_path, data):
    path = disk(stack, drive_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def make_solution(stack, name, version, readme="hello", folder=None, **manifest):
    """Writes a content folder on the drive and packages it with solution/create. Returns (drive path, bytes)."""
    folder = folder or "/admin/src/%s-%s-%s" % (name, version, sha256(readme.encode())[:8])
    pkg = {"name": name, "version": version, "short_description": "reads totals of %s" % name,
           "authors": ["Jay Doe"]}
    pkg.update(manifest)
    put(stack, folder + "/package.json", json.dumps(pkg))
    put(stack, folder + "/flow.json", json.dumps(FLOW))
    put(stack, folder + "/refiners/main.ibrefiner", json.dumps(REFINER))
    put(stack, folder + "/README.md", readme)
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": folder + "/out"})
    assert r.status_code == 200, r.text
    path = r.json()["ibsolution_path"]
    with open(disk(stack, path), "rb") as f:
        data = f.read()
    assert sha256(data) == r.json()["sha256"]
    return path, data


def publish(stack, path, token=ADMIN_TOKEN):
    return stack.post("/api/v1/marketplace/publish", {"ibsolution_path": path}, token=token)


def install(stack, name, version, token=ADMIN_TOKEN):
    return stack.post("/api/v1/marketplace/install", {"name": name, "version": version}, token=token)


def stored(stack, name, version):
    """(archive bytes, meta) of a published version, read from disk."""
    folder = os.path.join(stack.data, "marketplace", name, version)
    with open(os.path.join(folder, "%s-%s.ibsolution" % (name, version)), "rb") as f:
        data = f.read()
    with open(os.path.join(folder, "meta.json")) as f:
        return data, json.load(f)


def no_temporaries(folder):
    """No dot-named temporary anywhere below folder (.lock and .retired are the marketplace's own)."""
    if not os.path.isdir(folder):
        return True
    for dirpath, dirs, files in os.walk(folder):
        for n in dirs + files:
            if n.startswith(".") and n not in (".lock", ".retired") and not dirpath.endswith(".retired"):
                return False
    return True


def zip_bytes(entries):
    """A zip from (name or ZipInfo, bytes) pairs; names are taken as given (so '../x' and '/abs' stay)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def entries_of(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(n, z.read(n)) for n in z.namelist()]


def test_happy_path(stack):
    path, data = make_solution(stack, "inv", "1.0.0", industry="finance")
    r = publish(stack, path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "OK"
    assert (body["name"], body["version"], body["sha256"]) == ("inv", "1.0.0", sha256(data))
    archive, meta = stored(stack, "inv", "1.0.0")
    assert archive == data and meta["sha256"] == sha256(data) and meta["size"] == len(data)
    assert meta["publisher"] == "admin" and meta["manifest"]["industry"] == "finance"

    # Any user may install; the result is the unpacked archive.
    r = install(stack, "inv", "1.0.0", token=ALICE_TOKEN)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["version"]) == ("inv", "1.0.0")
    inst = os.path.join(stack.data, "installed", "inv", "1.0.0")
    assert sorted(os.listdir(inst)) == sorted(["README.md", "flow.json", "inv.ibflowbin", "package.json", "refiners"])
    with open(os.path.join(inst, "inv.ibflowbin"), "rb") as f:
        assert f.read() == dict(entries_of(data))["inv.ibflowbin"]
    assert install(stack, "inv", "1.0.0").status_code == 200  # idempotent
    assert install(stack, "inv", "latest").json()["version"] == "1.0.0"

    r = stack.get("/marketplace/list", token=BOB_TOKEN)
    assert r.status_code == 200, r.text
    app = [a for a in r.json()["apps"] if a["name"] == "inv"][0]
    assert app["available_versions"] == ["1.0.0"] and app["installed_versions"] == ["1.0.0"]
    assert app["short_description"] == "reads totals of inv" and app["authors"] == ["Jay Doe"]
    assert app["industry"] == "finance"

    r = stack.get("/api/v1/marketplace/info", params={"name": "inv"}, token=BOB_TOKEN)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["version"] == "1.0.0" and info["sha256"] == sha256(data) and info["size"] == len(data)
    assert info["manifest"]["name"] == "inv" and info["publisher"] == "admin" and info["installed"] is True
    assert info["published"].endswith("Z") and isinstance(info["published_unix"], int)
    assert info["available_versions"] == ["1.0.0"]

    r = stack.post("/marketplace/uninstall", {"name": "inv", "version": "1.0.0"})
    assert r.status_code == 200, r.text
    assert not os.path.exists(inst)
    assert stack.get("/marketplace/info", params={"name": "inv", "version": "1.0.0"}).json()["installed"] is False
    assert_error(stack.post("/marketplace/uninstall", {"name": "inv", "version": "1.0.0"}), 404, "not_found",
                 "'inv'", "1.0.0", "not installed")

    assert install(stack, "inv", "1.0.0").status_code == 200
    r = stack.post("/marketplace/unpublish", {"name": "inv", "version": "1.0.0"})
    assert r.status_code == 200, r.text
    assert r.json()["uninstalled"] is True
    assert not os.path.exists(os.path.join(stack.data, "marketplace", "inv", "1.0.0"))
    assert not os.path.exists(inst)
    assert "inv" not in [a["name"] for a in stack.get("/marketplace/list").json()["apps"]]
    assert_error(install(stack, "inv", "1.0.0"), 404, "not_found", "'inv'", "1.0.0")
    assert_error(stack.get("/marketplace/info", params={"name": "inv"}), 404, "not_found", "'inv'")
    assert_error(stack.post("/marketplace/unpublish", {"name": "inv", "version": "1.0.0"}), 404, "not_found",
                 "'inv'", "1.0.0")

    # The version number comes back only with the same content.
    other, other_data = make_solution(stack, "inv", "1.0.0", readme="changed")
    assert_error(publish(stack, other), 409, "conflict", "'inv'", "1.0.0", "unpublished", sha256(data))
    assert not os.path.exists(os.path.join(stack.data, "marketplace", "inv", "1.0.0"))
    assert publish(stack, path).status_code == 200
    assert stored(stack, "inv", "1.0.0")[0] == data
    assert no_temporaries(os.path.join(stack.data, "marketplace"))
    assert no_temporaries(os.path.join(stack.data, "installed"))


def test_publish_is_idempotent_and_versions_immutable(stack):
    path, data = make_solution(stack, "immut", "1.0.0")
    assert publish(stack, path).status_code == 200
    r = publish(stack, path)
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == sha256(data)

    other, other_data = make_solution(stack, "immut", "1.0.0", readme="other content")
    assert sha256(other_data) != sha256(data)
    assert_error(publish(stack, other), 409, "conflict", "'immut'", "version 1.0.0",
                 "already published with other content", "sha256 " + sha256(data))
    archive, meta = stored(stack, "immut", "1.0.0")
    assert archive == data and sha256(archive) == meta["sha256"] == sha256(data)


def test_concurrent_publishes_and_installs(stack_factory):
    # Eight workers, so the eight publishes really run at once and meet at the per-name lock.
    stack = stack_factory(extra_env={"IBSOL_WORKERS": "8"})
    paths = [make_solution(stack, "race", "1.0.0", readme="content %d" % i) for i in range(8)]
    assert len({sha256(d) for _, d in paths}) == 8

    def one(p):
        r = requests.post(stack.url + "/marketplace/publish", json={"ibsolution_path": p},
                          headers={"Authorization": "Bearer " + ADMIN_TOKEN}, timeout=120)
        return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, [p for p, _ in paths]))
    codes = sorted(c for c, _ in results)
    assert codes == [200] + [409] * 7, results
    winner = [b for c, b in results if c == 200][0]
    archive, meta = stored(stack, "race", "1.0.0")
    assert sha256(archive) == meta["sha256"] == winner["sha256"]
    assert archive in [d for _, d in paths]
    for c, b in results:
        if c == 409:
            assert winner["sha256"] in b["msg"], b
    assert no_temporaries(os.path.join(stack.data, "marketplace"))
    assert sorted(os.listdir(os.path.join(stack.data, "marketplace"))) == ["race"]

    def inst(_):
        return requests.post(stack.url + "/marketplace/install", json={"name": "race", "version": "latest"},
                             headers={"Authorization": "Bearer " + ALICE_TOKEN}, timeout=120).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(inst, range(8))) == [200] * 8
    assert os.listdir(os.path.join(stack.data, "installed", "race")) == ["1.0.0"]
    with open(os.path.join(stack.data, "installed", "race", "1.0.0", "README.md")) as f:
        assert f.read() == dict(entries_of(archive))["README.md"].decode()


def test_latest_resolution(stack):
    for v in ("1.10.0", "1.0.0", "2.0.0-beta", "1.2.0"):
        path, _ = make_solution(stack, "semv", v)
        assert publish(stack, path).status_code == 200
    info = stack.get("/marketplace/info", params={"name": "semv"}).json()
    assert info["available_versions"] == ["1.0.0", "1.2.0", "1.10.0", "2.0.0-beta"]
    # "latest" is the highest release: a pre-release is not offered over it (numeric, not text order).
    assert info["version"] == "1.10.0"
    r = install(stack, "semv", "latest")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "1.10.0"
    assert stack.get("/marketplace/info", params={"name": "semv", "version": "2.0.0-beta"}).json()["version"] == \
        "2.0.0-beta"
    path, _ = make_solution(stack, "semv", "2.0.0")
    assert publish(stack, path).status_code == 200
    assert install(stack, "semv", "latest").json()["version"] == "2.0.0"
    app = [a for a in stack.get("/marketplace/list").json()["apps"] if a["name"] == "semv"][0]
    assert app["available_versions"] == ["1.0.0", "1.2.0", "1.10.0", "2.0.0-beta", "2.0.0"]
    assert app["installed_versions"] == ["1.10.0", "2.0.0"]
    assert app["latest_version"] == "2.0.0"
    # Only pre-releases published: the highest of them is latest.
    path, _ = make_solution(stack, "prerel", "0.1.0-alpha")
    assert publish(stack, path).status_code == 200
    path, _ = make_solution(stack, "prerel", "0.1.0-alpha.1")
    assert publish(stack, path).status_code == 200
    assert install(stack, "prerel", "latest").json()["version"] == "0.1.0-alpha.1"


def test_list_sorted_by_name(stack):
    names = [a["name"] for a in stack.get("/marketplace/list", token=ALICE_TOKEN).json()["apps"]]
    assert names == sorted(names) and len(names) >= 1


def test_roles(stack):
    path, _ = make_solution(stack, "roles", "1.0.0")
    assert_error(publish(stack, path, token=ALICE_TOKEN), 403, "forbidden", "only an admin may publish")
    assert not os.path.exists(os.path.join(stack.data, "marketplace", "roles"))
    assert publish(stack, path).status_code == 200
    assert install(stack, "roles", "1.0.0", token=BOB_TOKEN).status_code == 200
    assert_error(stack.post("/marketplace/unpublish", {"name": "roles", "version": "1.0.0"}, token=BOB_TOKEN),
                 403, "forbidden", "only an admin may unpublish")
    assert_error(stack.post("/marketplace/uninstall", {"name": "roles", "version": "1.0.0"}, token=BOB_TOKEN),
                 403, "forbidden", "only an admin may uninstall")
    assert os.path.isdir(os.path.join(stack.data, "marketplace", "roles", "1.0.0"))
    assert os.path.isdir(os.path.join(stack.data, "installed", "roles", "1.0.0"))
    # A user's own file is still not publishable by that user; another user's path is refused before that.
    put(stack, "/alice/x.ibsolution", b"x")
    assert_error(publish(stack, "/alice/x.ibsolution", token=ALICE_TOKEN), 403, "forbidden")


def test_not_found_and_bad_arguments(stack):
    assert_error(install(stack, "nosuch", "1.0.0"), 404, "not_found", "'nosuch'")
    assert_error(install(stack, "nosuch", "latest"), 404, "not_found", "'nosuch'")
    path, _ = make_solution(stack, "known", "1.0.0")
    assert publish(stack, path).status_code == 200
    assert_error(install(stack, "known", "9.9.9"), 404, "not_found", "'known'", "'9.9.9'")
    assert_error(install(stack, "../known", "1.0.0"), 400, "bad_request", "'name'", "'../known'")
    assert_error(install(stack, "known", "../1.0.0"), 400, "bad_request", "'version'", "'../1.0.0'")
    assert_error(install(stack, "known", "1.0"), 400, "bad_request", "'version'", "'1.0'")
    assert_error(stack.post("/marketplace/install", {"name": "known"}), 400, "bad_request", "'version'")
    assert_error(stack.post("/marketplace/install", {"name": 3, "version": "1.0.0"}), 400, "bad_request", "'name'")
    assert_error(stack.post("/marketplace/uninstall", {"name": "known", "version": "latest"}), 400, "bad_request",
                 "'version'")
    assert_error(stack.get("/marketplace/info", params={"name": "nosuch"}), 404, "not_found", "'nosuch'")
    assert_error(stack.get("/marketplace/info", params={"name": "known", "version": "2.0.0"}), 404, "not_found",
                 "'2.0.0'")
    assert_error(publish(stack, "/admin/missing/x.ibsolution"), 404, "not_found", "ibsolution_path",
                 "/admin/missing/x.ibsolution")
    assert_error(publish(stack, "/admin/../etc/passwd"), 400, "bad_request", "ibsolution_path")
    os.makedirs(disk(stack, "/admin/afolder"), exist_ok=True)
    assert_error(publish(stack, "/admin/afolder"), 400, "bad_request", "'/admin/afolder'", "folder")


def test_bad_archives(stack):
    _, good = make_solution(stack, "badpkg", "1.0.0")
    entries = dict(entries_of(good))
    manifest, flowbin = entries["package.json"], entries["badpkg.ibflowbin"]
    slash_abs = zipfile.ZipInfo("/abs", (2020, 1, 1, 0, 0, 0))
    cases = [
        ("notzip", b"this is not a zip file at all", ["archive is not a zip file"]),
        ("empty", b"", ["archive is not a zip file"]),
        ("truncated", good[:len(good) // 2], ["archive is truncated or damaged"]),
        ("dotdot", zip_bytes([("package.json", manifest), ("badpkg.ibflowbin", flowbin), ("../x", b"x")]),
         ["archive entry '../x' escapes its folder"]),
        ("abs", zip_bytes([("package.json", manifest), ("badpkg.ibflowbin", flowbin), (slash_abs, b"x")]),
         ["archive entry '/abs' escapes its folder"]),
        ("nomanifest", zip_bytes([("badpkg.ibflowbin", flowbin), ("flow.json", b"{}")]),
         ["archive has no 'package.json'"]),
        ("noflow", zip_bytes([("package.json", manifest), ("flow.json", json.dumps(FLOW).encode())]),
         ["archive has no 'badpkg.ibflowbin'"]),
        ("badmanifest", zip_bytes([("package.json", b'{"name": "badpkg", "version": "1.0"}'),
                                   ("badpkg.ibflowbin", flowbin)]), ["package.json", "'version'"]),
        ("badflow", zip_bytes([("package.json", manifest), ("badpkg.ibflowbin", b'{"format": "nope"}')]),
         ["'badpkg.ibflowbin' is not a valid compiled flow"]),
        ("otherflow", zip_bytes([("package.json", manifest.replace(b'"badpkg"', b'"badpkg2"')),
                                 ("badpkg2.ibflowbin", flowbin)]),
         ["'badpkg2.ibflowbin' was compiled for solution 'badpkg'"]),
    ]
    for label, data, fragments in cases:
        path = "/admin/bad/%s.ibsolution" % label
        put(stack, path, data)
        r = publish(stack, path)
        assert_error(r, 400, "bad_request", "ibsolution_path '%s'" % path, *fragments)
        for name in ("badpkg", "badpkg2"):
            assert not os.path.exists(os.path.join(stack.data, "marketplace", name)), label
        assert not [n for n in os.listdir(os.path.join(stack.data, "marketplace")) if n.startswith(".")], label


def test_archive_limits(stack_factory):
    s = stack_factory(extra_env={"IBSOL_MAX_ARCHIVE": "10000", "IBSOL_MAX_ENTRIES": "20"})
    small, small_data = make_solution(s, "small", "1.0.0")
    assert publish(s, small).status_code == 200
    big, data = make_solution(s, "big", "1.0.0", readme="a" * 20000)
    assert len(data) < 10000  # the file is small: it is the uncompressed size that passes the limit
    assert_error(publish(s, big), 400, "bad_request", "ibsolution_path '%s'" % big, "archive uncompressed size",
                 "passes the limit of 10000 bytes")
    many = zip_bytes(entries_of(small_data) + [("extra/%d.txt" % i, b"x") for i in range(20)])
    put(s, "/admin/many.ibsolution", many)
    assert_error(publish(s, "/admin/many.ibsolution"), 400, "bad_request", "/admin/many.ibsolution",
                 "more than the limit of 20")
    # A file far larger than any archive within the limits is refused before it is copied.
    put(s, "/admin/huge.ibsolution", os.urandom(6 << 20))
    assert_error(publish(s, "/admin/huge.ibsolution"), 400, "bad_request", "ibsolution_path '/admin/huge.ibsolution'",
                 "more than an archive within the limit of 10000 bytes")
    for name in ("big", "extra"):
        assert not os.path.exists(os.path.join(s.data, "marketplace", name))
    assert sorted(os.listdir(os.path.join(s.data, "marketplace"))) == ["small"]
    assert s.get("/healthz").status_code == 200


def test_special_files_on_the_drive(stack):
    fifo = disk(stack, "/admin/special/pipe.ibsolution")
    os.makedirs(os.path.dirname(fifo), exist_ok=True)
    os.mkfifo(fifo)
    assert_error(publish(stack, "/admin/special/pipe.ibsolution"), 400, "bad_request",
                 "'/admin/special/pipe.ibsolution'", "not a regular file")
    os.symlink("/etc/passwd", disk(stack, "/admin/special/out.ibsolution"))
    assert_error(publish(stack, "/admin/special/out.ibsolution"), 403, "forbidden", "/admin/special/out.ibsolution")
    assert not [n for n in os.listdir(os.path.join(stack.data, "marketplace")) if n.startswith(".")]


def test_corrupt_stored_archive_is_not_installed(stack):
    path, data = make_solution(stack, "corrupt", "1.0.0")
    assert publish(stack, path).status_code == 200
    stored_path = os.path.join(stack.data, "marketplace", "corrupt", "1.0.0", "corrupt-1.0.0.ibsolution")
    with open(stored_path, "r+b") as f:
        f.seek(len(data) // 2)
        b = f.read(1)
        f.seek(len(data) // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    assert_error(install(stack, "corrupt", "1.0.0"), 500, "internal", "stored archive is corrupt", "'corrupt'")
    assert_error(install(stack, "corrupt", "latest"), 500, "internal", "stored archive is corrupt")
    assert not os.path.exists(os.path.join(stack.data, "installed", "corrupt", "1.0.0"))
    assert no_temporaries(os.path.join(stack.data, "installed"))
    # Unpublishing still works, and keeps the digest it was published with.
    assert stack.post("/marketplace/unpublish", {"name": "corrupt", "version": "1.0.0"}).status_code == 200
    with open(os.path.join(stack.data, "marketplace", "corrupt", ".retired", "1.0.0.sha256")) as f:
        assert f.read().strip() == sha256(data)
    assert publish(stack, path).status_code == 200


def test_crash_leftovers_are_swept_at_start(stack_factory):
    s = stack_factory(start=False)
    market, inst = os.path.join(s.data, "marketplace"), os.path.join(s.data, "installed")
    old = [os.path.join(market, ".incoming.tmp-abcdefgh"), os.path.join(market, "app", ".tmp-1.0.0-abcdefgh"),
           os.path.join(inst, "app", ".tmp-1.0.0-abcdefgh"), os.path.join(inst, "app", ".del-1.0.0-abcdefgh")]
    young = os.path.join(market, "app", ".tmp-2.0.0-abcdefgh")
    for p in old + [young]:
        os.makedirs(p)
        with open(os.path.join(p, "f"), "w") as f:
            f.write("x")
    for p in old:
        os.utime(p, (1000000000, 1000000000))
    s.start_all()
    assert [p for p in old if os.path.exists(p)] == []
    assert os.path.exists(young)  # may be another daemon's work in progress
    assert s.get("/marketplace/list").json()["apps"] == []


def test_daemon_still_up(stack):
    assert stack.get("/healthz").status_code == 200
    assert stack.procs["marketplace"].poll() is None
    assert stack.get("/marketplace/list").status_code == 200


def test_list_is_served_from_cache_until_the_catalog_changes(stack):
    """marketplace/list replies are cached by the gateway; every change moves the stamp so none is stale."""
    before = stack.get("/marketplace/list").json()
    assert stack.get("/marketplace/list").json() == before
    stamp = os.path.join(stack.data, "run/catalog.stamp")
    st = os.stat(stamp)
    path, _ = make_solution(stack, "cache_probe", "3.1.4")
    assert publish(stack, path).status_code == 200
    assert os.stat(stamp).st_ino != st.st_ino
    after = stack.get("/marketplace/list").json()
    names = [a["name"] for a in after["apps"]]
    assert "cache_probe" in names
    assert stack.post("/marketplace/install", {"name": "cache_probe", "version": "3.1.4"}).status_code == 200
    app = [a for a in stack.get("/marketplace/list").json()["apps"] if a["name"] == "cache_probe"][0]
    assert app["installed_versions"] == ["3.1.4"]
    assert stack.post("/marketplace/unpublish", {"name": "cache_probe", "version": "3.1.4"}).status_code == 200
    assert "cache_probe" not in [a["name"] for a in stack.get("/marketplace/list").json()["apps"]]
