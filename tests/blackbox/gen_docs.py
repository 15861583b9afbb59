"""Documents the black-box tests generate instead of reading files from outside the repository: the unit
tests' generated multi-column PDF (tests/unit/engine/doc_test_util.h), written by the build's
tests/make_test_pdf."""
import atexit
import os
import shutil
import subprocess
import tempfile

from conftest import BIN, SOURCE

_DIR = None


def columns_pdf(pages):
    """Path of a letter-sized PDF of `pages` pages of three-column prose (made once per test session)."""
    global _DIR
    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix="ibsol-docs-")
        atexit.register(shutil.rmtree, _DIR, True)
    path = os.path.join(_DIR, "columns-%d.pdf" % pages)
    if not os.path.exists(path):
        tool = os.path.join(BIN, "tests", "make_test_pdf")
        if not os.path.exists(tool):
            raise RuntimeError("%s is missing: build with -DIBSOL_TESTS=ON (it writes the tests' PDFs)" % tool)
        env = dict(os.environ)  # fontconfig's own leaks, as for every test program (sanitizer builds)
        env["LSAN_OPTIONS"] = "suppressions=" + os.path.join(SOURCE, "tests", "lsan.supp")
        subprocess.run([tool, path, str(pages)], check=True, env=env)
    return path
