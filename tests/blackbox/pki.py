"""Certificates for the tls+tcp:// tests, made at run time with the openssl command (EC P-256, valid for a day):
a CA, a daemon certificate it signs, and a second CA with its own "rogue" certificate. Nothing is kept."""
import os
import shutil
import subprocess

import pytest


def _openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr)


def make_ca(folder, name):
    key, crt = os.path.join(folder, name + ".key"), os.path.join(folder, name + ".crt")
    _openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=%s" % name)
    return crt, key


def make_cert(folder, name, ca):
    """A certificate for `name` signed by ca (crt, key); returns (crt, key)."""
    key, csr, crt = (os.path.join(folder, name + ext) for ext in (".key", ".csr", ".crt"))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
             "-out", csr, "-subj", "/CN=%s" % name)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", crt,
             "-days", "1")
    return crt, key


class Pki:
    def __init__(self, folder):
        if not shutil.which("openssl"):
            pytest.skip("the TLS tests make their certificates with the openssl command (apt-get install openssl)")
        self.folder = folder
        self.ca = make_ca(folder, "ibsol-ca")
        self.node = make_cert(folder, "ibsol-node", self.ca)
        self.other_ca = make_ca(folder, "other-ca")
        self.rogue = make_cert(folder, "rogue", self.other_ca)
        # Trusts both CAs: lets a rogue program pass its own start checks and reach the handshake.
        self.both_cas = os.path.join(folder, "both-cas.crt")
        with open(self.both_cas, "w") as out:
            for crt in (self.ca[0], self.other_ca[0]):
                with open(crt) as f:
                    out.write(f.read())

    def env(self, cert=None, ca=None):
        """The IBSOL_TLS_* settings for a program holding cert (default: the daemon certificate)."""
        crt, key = cert or self.node
        return {"IBSOL_TLS_CERT": crt, "IBSOL_TLS_KEY": key, "IBSOL_TLS_CA": ca or self.ca[0]}
