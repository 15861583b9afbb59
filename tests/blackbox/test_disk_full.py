"""A full data root: every write that fails for space answers 507 insufficient_storage "no space left on the data
root", leaves nothing half-written, and the stack works again once there is room. The data root is a 4 MiB
tmpfs, so this needs root (the test is skipped with the reason otherwise)."""
import errno
import json
import os
import subprocess

import pytest

from conftest import assert_error

MSG = "no space left on the data root"
PACKAGE = {"name": "tiny", "version": "1.0.0", "short_description": "disk full test", "authors": ["tests"]}
FLOW = {"steps": [{"type": "process_files"}, {"type": "apply_refiner", "programs": {"*": "refiners/r.ibrefiner"}}]}
REFINER = {"fields": [{"name": "total", "formula": "'1'"}]}


@pytest.fixture
def small_stack(stack_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a 4 MiB tmpfs as the data root")
    s = stack_factory(start=False)
    with open(os.path.join(s.data, "tokens")) as f:
        tokens = f.read()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", s.data], check=True)
    try:
        with open(os.path.join(s.data, "tokens"), "w") as f:
            f.write(tokens)
        os.chmod(os.path.join(s.data, "tokens"), 0o600)
        s.start_all()
        yield s
        problems = s.shutdown()  # before the unmount; stack_factory's own shutdown then finds nothing running
        assert not problems, "\n".join(problems)
    finally:
        subprocess.run(["umount", "-l", s.data], check=False)


def fill(s):
    """Writes a file until the data root is full; returns its path."""
    path = os.path.join(s.data, "filler")
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return path


def leftovers(folder):
    """Temporaries or partial files anywhere below folder."""
    out = []
    for dirpath, _, files in os.walk(folder):
        out += [os.path.join(dirpath, f) for f in files if ".tmp" in f]
    return out


def test_full_data_root_is_507_everywhere_and_leaves_nothing(small_stack):
    s = small_stack
    src = "/admin/src"
    for name, value in (("package.json", PACKAGE), ("flow.json", FLOW), ("refiners/r.ibrefiner", REFINER)):
        s.put_file(src + "/" + name, json.dumps(value).encode())
    s.put_file("/admin/in/a.txt", b"total 1\n")
    r = s.post("/solution/create", {"content_folder": src, "output_folder": "/admin/build"})
    assert r.status_code == 200, r.text
    sol = r.json()["ibsolution_path"]
    r = s.post("/marketplace/publish", {"ibsolution_path": sol})
    assert r.status_code == 200, r.text
    jobs = os.path.join(s.data, "jobs")
    jobs_before = sorted(os.listdir(jobs))

    filler = fill(s)
    # the files API
    r = s.call("PUT", "/api/v2/files/admin/up/big.bin", data=b"x" * 300000)
    assert_error(r, 507, "insufficient_storage", MSG)
    assert not os.path.exists(os.path.join(s.data, "drive/admin/up/big.bin"))
    r = s.call("PATCH", "/api/v2/files/admin/in/a.txt", data=b"y" * 300000, headers={"IB-Cursor": "-1"})
    assert_error(r, 507, "insufficient_storage", MSG)
    with open(os.path.join(s.data, "drive/admin/in/a.txt"), "rb") as f:
        assert f.read() == b"total 1\n"  # cut back to what it was
    # the packager
    r = s.post("/solution/create", {"content_folder": src, "output_folder": "/admin/build2"})
    assert_error(r, 507, "insufficient_storage", MSG)
    build2 = os.path.join(s.data, "drive/admin/build2")
    assert not os.path.isdir(build2) or os.listdir(build2) == []
    # the marketplace: an install unpacks the stored archive
    r = s.post("/marketplace/install", {"name": "tiny", "version": "1.0.0"})
    assert_error(r, 507, "insufficient_storage", "was not installed", MSG)
    assert not os.path.isdir(os.path.join(s.data, "installed/tiny/1.0.0"))
    # the runner
    r = s.post("/solution/run", {"solution_path": sol, "input_folder": "/admin/in"})
    assert_error(r, 507, "insufficient_storage", MSG)
    assert sorted(os.listdir(jobs)) == jobs_before  # no record, lock or per-file folder of a job never made
    assert os.listdir(os.path.join(jobs, "active")) == []
    assert leftovers(s.data) == []
    # nothing of the failed install either: no file anywhere below installed/
    assert [f for _, _, files in os.walk(os.path.join(s.data, "installed")) for f in files] == []

    # room again: the same calls work
    os.unlink(filler)
    s.put_file("/admin/up/big.bin", b"x" * 300000)
    r = s.post("/solution/run", {"solution_path": sol, "input_folder": "/admin/in"})
    assert r.status_code == 200, r.text
    r = s.post("/marketplace/install", {"name": "tiny", "version": "1.0.0"})
    assert r.status_code == 200, r.text
