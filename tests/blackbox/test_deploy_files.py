"""The deployment files (deploy/docker/, deploy/docker-compose.yml, deploy/systemd/) checked without a Docker
engine: the compose file is valid and wired consistently, the Dockerfile's shape and package names hold on
Debian 12, the container scripts work against the real daemons, and systemd accepts the units."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import yaml

from conftest import BIN, SOURCE, binary, free_port

DEPLOY = os.path.join(SOURCE, "deploy")
COMPOSE = os.path.join(DEPLOY, "docker-compose.yml")
DOCKERFILE = os.path.join(DEPLOY, "docker", "Dockerfile")
PROXY_DOCKERFILE = os.path.join(DEPLOY, "docker", "proxy.Dockerfile")
ENTRYPOINT = os.path.join(DEPLOY, "docker", "entrypoint.sh")
HEALTHCHECK = os.path.join(DEPLOY, "docker", "healthcheck.sh")
SYSTEMD = os.path.join(DEPLOY, "systemd")
DAEMONS = ("gateway", "packager", "marketplace", "runner")
DATA_ROOT = "/data"


def compose():
    with open(COMPOSE) as f:
        return yaml.safe_load(f)  # PyYAML resolves the file's anchors and << merge keys


def env_of(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def tcp(url):
    m = re.fullmatch(r"tcp://([^:/]+|\[[^]]+\]):(\d+)", url)
    assert m, "'%s' is not tcp://HOST:PORT" % url
    return m.group(1), int(m.group(2))


def settings_defaults():
    """IBSOL_NAME -> default, from every daemon's --help (the one source of truth)."""
    out = {}
    for d in DAEMONS + ("op",):
        path = binary(d) if d != "op" else os.path.join(BIN, "cli/ibsol-op")
        if not os.access(path, os.X_OK):
            pytest.skip("no %s binary in IBSOL_BIN=%s to read the settings from: build first" % (d, BIN))
        text = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30).stdout
        for m in re.finditer(r"\[(IBSOL_[A-Z0-9_]+)(?:, [-0-9]+\.\.[-0-9]+)?(?:, default ([^\]]*))?\]", text):
            out[m.group(1)] = m.group(2) or ""
    assert "IBSOL_DATA" in out and "IBSOL_HTTP_PORT" in out, "could not parse --help"
    return out


# --- docker-compose ------------------------------------------------------------------------------------------

def test_compose_config_is_valid():
    exe = shutil.which("docker-compose")
    if not exe:
        pytest.skip("docker-compose is not installed (deploy/install-deps.sh --test installs Debian's "
                    "docker-compose package): the compose file was not validated by Compose itself")
    p = subprocess.run([exe, "-f", COMPOSE, "config", "-q"], capture_output=True, text=True, timeout=120,
                       cwd=SOURCE)
    assert p.returncode == 0, p.stderr
    # The resolved form (anchors merged, ${VAR:-default} filled in) keeps what the raw YAML says.
    p = subprocess.run([exe, "-f", COMPOSE, "config"], capture_output=True, text=True, timeout=120, cwd=SOURCE,
                       env={k: v for k, v in os.environ.items() if not k.startswith("IBSOL_")})
    assert p.returncode == 0, p.stderr
    resolved = yaml.safe_load(p.stdout)
    for d in DAEMONS:
        assert env_of(resolved["services"][d])["IBSOL_DATA"] == DATA_ROOT
    assert env_of(resolved["services"]["gateway"])["IBSOL_HTTP_THREADS"] == "32"
    # Compose v1 builds services in its dependency order: the one that builds the image must come first, or
    # `up` on a machine without the image pulls it for the others (and fails) before building it.
    order = _compose_order(compose()["services"])
    assert order[0] == "packager", "docker-compose handles %s first, not the service that builds the image" % order[0]
    # Published ports are on loopback unless IBSOL_PUBLIC_BIND names another address.
    assert resolved["services"]["proxy"]["ports"] == ["127.0.0.1:80:80/tcp", "127.0.0.1:443:443/tcp"]
    p = subprocess.run([exe, "-f", COMPOSE, "config"], capture_output=True, text=True, timeout=120, cwd=SOURCE,
                       env=dict({k: v for k, v in os.environ.items() if not k.startswith("IBSOL_")},
                                IBSOL_PUBLIC_BIND="0.0.0.0", IBSOL_PUBLIC_HTTPS_PORT="8443"))
    assert p.returncode == 0, p.stderr
    assert yaml.safe_load(p.stdout)["services"]["proxy"]["ports"] == ["0.0.0.0:80:80/tcp", "0.0.0.0:8443:443/tcp"]


def _compose_order(services):
    """The order docker-compose v1 (Debian 12's 1.29) handles the file's services in: its own sort, run on them
    in the file's order as it does."""
    try:
        from compose.config.sort_services import sort_service_dicts
    except ImportError:
        pytest.skip("docker-compose's Python modules are not importable: its service order was not checked")
    return [d["name"] for d in sort_service_dicts([dict(v, name=k) for k, v in services.items()])]


def test_compose_structure():
    c = compose()
    services = c["services"]
    for name in DAEMONS + ("proxy",):
        assert name in services, "service '%s' is missing" % name
    image = services["gateway"]["image"]
    # One build of the one image: a build: on every daemon (as from a shared block) builds it once per service.
    builders = [d for d in DAEMONS if "build" in services[d]]
    assert builders == ["packager"], "the ibsol image is built by %s: it should be built once, by packager" % builders
    build = services["packager"]["build"]
    assert build["dockerfile"] == "deploy/docker/Dockerfile"
    assert os.path.isfile(os.path.join(DEPLOY, build["context"], build["dockerfile"]))
    for d in DAEMONS:
        s = services[d]
        assert s["image"] == image, "%s runs another image than the gateway" % d
        assert s["command"][0] == d, "the command picks the daemon"
        assert s.get("restart") == "unless-stopped", d
        assert s.get("healthcheck", {}).get("test"), "%s has no healthcheck" % d
        assert d in s["healthcheck"]["test"], "%s's healthcheck checks another daemon" % d
        assert env_of(s).get("IBSOL_DATA") == DATA_ROOT, d
        assert "container_name" not in s or d != "runner"
    # Runners scale: no fixed ports, no fixed name.
    runner = services["runner"]
    assert "ports" not in runner and "container_name" not in runner and "hostname" not in runner
    # Only the proxy publishes ports; the gateway's plain HTTP stays inside.
    for d in DAEMONS:
        assert "ports" not in services[d], "%s publishes ports: only the TLS proxy should" % d
    # One named volume, the data root of all four.
    named = set(c.get("volumes") or {})
    mounts = {}
    for d in DAEMONS:
        vols = [v for v in services[d].get("volumes", []) if str(v).split(":")[1] == DATA_ROOT]
        assert len(vols) == 1, "%s does not mount the data root at %s" % (d, DATA_ROOT)
        mounts[d] = vols[0].split(":")[0]
    assert len(set(mounts.values())) == 1, "daemons mount different data roots: %s" % mounts
    assert next(iter(mounts.values())) in named, "the data root is not a named volume"


def test_compose_urls_are_consistent():
    services = compose()["services"]
    env = {d: env_of(services[d]) for d in DAEMONS}
    gw = env["gateway"]
    assert gw["IBSOL_HTTP_HOST"] == "0.0.0.0"
    for d in DAEMONS:  # the default roles: services listen, runners dial
        for k in ("IBSOL_PACKAGER_DIALS", "IBSOL_MARKETPLACE_DIALS", "IBSOL_RUNNER_DIALS"):
            assert k not in env[d], "%s overrides %s: the URL checks below assume the default roles" % (d, k)
    # What the gateway dials is what packager and marketplace listen on.
    for svc, name in (("packager", "IBSOL_PACKAGER_URL"), ("marketplace", "IBSOL_MARKETPLACE_URL")):
        lhost, lport = tcp(env[svc][name])
        dhost, dport = tcp(gw[name])
        assert lhost == "0.0.0.0", "%s should listen on every interface, not %s" % (svc, lhost)
        assert (dhost, dport) == (svc, lport), "the gateway dials %s but %s listens on %s" % (
            gw[name], svc, env[svc][name])
    # What runners dial is what the gateway listens on.
    for name in ("IBSOL_RUNNER_URL", "IBSOL_EVENTS_URL"):
        lhost, lport = tcp(gw[name])
        dhost, dport = tcp(env["runner"][name])
        assert lhost == "0.0.0.0"
        assert (dhost, dport) == ("gateway", lport), "runners dial %s but the gateway listens on %s" % (
            env["runner"][name], gw[name])
    ports = [tcp(gw[n])[1] for n in ("IBSOL_RUNNER_URL", "IBSOL_EVENTS_URL")]
    ports += [tcp(env[s][n])[1] for s, n in (("packager", "IBSOL_PACKAGER_URL"), ("marketplace", "IBSOL_MARKETPLACE_URL"))]
    assert len(set(ports)) == 4 and int(gw["IBSOL_HTTP_PORT"]) not in ports


def test_compose_proxy_fronts_the_gateway():
    services = compose()["services"]
    proxy = services["proxy"]
    # Built here from Debian's caddy (no registry needed), as its own image.
    assert proxy["image"] != services["gateway"]["image"]
    assert os.path.join(DEPLOY, proxy["build"]["context"], proxy["build"]["dockerfile"]) == os.path.join(
        DEPLOY, "docker", "proxy.Dockerfile")
    assert "gateway" in proxy.get("depends_on", [])
    assert proxy.get("restart") == "unless-stopped"
    # Published on IBSOL_PUBLIC_BIND, loopback unless set, for both ports.
    assert sorted(proxy["ports"]) == ["${IBSOL_PUBLIC_BIND:-127.0.0.1}:${IBSOL_PUBLIC_HTTPS_PORT:-443}:443",
                                      "${IBSOL_PUBLIC_BIND:-127.0.0.1}:${IBSOL_PUBLIC_HTTP_PORT:-80}:80"], proxy["ports"]
    # The health check's program is installed in the proxy image (a wget check on an image without wget
    # leaves the proxy "unhealthy" for ever).
    test = proxy.get("healthcheck", {}).get("test")
    assert test and test[0] == "CMD", test
    with open(PROXY_DOCKERFILE) as f:
        pd = re.sub(r"\\\n", " ", f.read())
    assert re.search(r"^FROM debian:12\S*$", pd, re.M), "the proxy image is not built on Debian 12"
    installed = re.search(r"apt-get install ((?:-\S+ )*)(.*?)(?:&&|$)", pd, re.M).group(2).split()
    assert "caddy" in installed
    assert test[1] in installed, "the proxy's health check runs %s, which its image does not install" % test[1]
    assert re.search(r"^HEALTHCHECK .*CMD \[\"%s\"" % re.escape(test[1]), pd, re.M)
    assert re.search(r"^USER caddy", pd, re.M), "the proxy runs as root"
    assert proxy["sysctls"]["net.ipv4.ip_unprivileged_port_start"] == 0, "caddy (not root) cannot bind 80 and 443"
    assert env_of(proxy)["IBSOL_UPSTREAM"] == "gateway:" + env_of(services["gateway"])["IBSOL_HTTP_PORT"]
    confs = [v.split(":")[0] for v in proxy["volumes"] if v.startswith("./")]
    assert confs, "the proxy mounts no config file from deploy/"
    for conf in confs:
        assert os.path.isfile(os.path.join(DEPLOY, conf)), conf
    caddyfile = os.path.join(DEPLOY, "docker", "Caddyfile")
    with open(caddyfile) as f:
        text = f.read()
    assert re.search(r"reverse_proxy \{\$IBSOL_UPSTREAM:gateway:8080\}", text)
    caddy = shutil.which("caddy")
    if not caddy:
        pytest.skip("caddy is not installed here: the Caddyfile was not parsed by Caddy (apt-get install caddy "
                    "to check it; it is not in the test packages because its package starts a web server)")
    p = subprocess.run([caddy, "adapt", "--config", caddyfile, "--adapter", "caddyfile"], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, IBSOL_UPSTREAM="gateway:8080"))
    assert p.returncode == 0, p.stderr
    assert '"dial":"gateway:8080"' in p.stdout.replace(" ", "")


def test_compose_and_env_example_defaults_are_the_daemons():
    defaults = settings_defaults()
    with open(COMPOSE) as f:
        text = f.read()
    used = {}
    for name, default in re.findall(r"\$\{(IBSOL_[A-Z0-9_]+):-([^}]*)\}", text):
        used[name] = default
        if name in defaults:
            assert default == defaults[name], "compose's default for %s is '%s', the daemons' is '%s'" % (
                name, default, defaults[name])
    with open(os.path.join(DEPLOY, "ibsol.env.example")) as f:
        example = dict(re.findall(r"^#?(IBSOL_[A-Z0-9_]+)=(.*)$", f.read(), re.M))
    assert example, "deploy/ibsol.env.example names no setting"
    for name, value in example.items():
        assert name in used, "%s in ibsol.env.example has no effect: the compose file does not use it" % name
        assert value == used[name], "ibsol.env.example says %s=%s, the compose file's default is '%s'" % (
            name, value, used[name])
    for name in used:
        assert name in example, "the compose file reads %s, ibsol.env.example does not mention it" % name
    with open(os.path.join(SYSTEMD, "ibsol.env")) as f:
        for name, value in re.findall(r"^#?(IBSOL_[A-Z0-9_]+)=(.*)$", f.read(), re.M):
            assert name in defaults, "deploy/systemd/ibsol.env names %s, which no daemon reads" % name
            if name not in ("IBSOL_DATA",) and value:
                assert value == defaults[name], "deploy/systemd/ibsol.env: %s=%s, the default is '%s'" % (
                    name, value, defaults[name])


# --- Dockerfile ----------------------------------------------------------------------------------------------

def dockerfile_stages():
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    stages = []
    for l in lines:
        if l.upper().startswith("FROM "):
            stages.append([l])
        elif stages:
            stages[-1].append(l)
    return stages


def runtime_packages():
    run = dockerfile_stages()[-1]
    for l in run:
        m = re.search(r"apt-get install ((?:-\S+ )*)(.*?)(?:&&|$)", l)
        if m:
            return m.group(2).split()
    raise AssertionError("the run stage installs no packages")


def test_dockerfile_shape():
    stages = dockerfile_stages()
    assert len(stages) == 3, "expected a package-list stage, a build stage and a run stage"
    packages, build, run = stages
    assert re.match(r"FROM debian:12\S* AS packages$", packages[0], re.I), packages[0]
    assert re.match(r"FROM debian:12\S* AS build$", build[0], re.I), build[0]
    assert re.match(r"FROM debian:12\S*$", run[0], re.I), run[0]
    # The build stage installs exactly the build packages deploy/install-deps.sh names: the list comes from
    # the script itself (--list), and only the list reaches the build stage.
    p = "\n".join(packages)
    assert "COPY deploy/install-deps.sh" in p
    m = re.search(r"^RUN \S*install-deps\.sh --list >(\S+)$", p, re.M)
    assert m, "the packages stage does not write install-deps.sh --list to a file"
    b = "\n".join(build)
    assert re.search(r"^COPY --from=packages %s (\S+)$" % re.escape(m.group(1)), b, re.M)
    assert re.search(r"xargs -a \S+ .*apt-get install", b)
    listed = subprocess.run([os.path.join(DEPLOY, "install-deps.sh"), "--list"], capture_output=True, text=True,
                            timeout=30)
    assert listed.returncode == 0 and "cmake" in listed.stdout.split() and "libcmocka-dev" not in listed.stdout
    assert "-DCMAKE_BUILD_TYPE=Release" in b and "-DIBSOL_TESTS=OFF" in b
    r = "\n".join(run)
    users = re.findall(r"^USER (\S+)", r, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as root"
    assert re.search(r'^VOLUME \[?"?%s"?\]?' % DATA_ROOT, r, re.M)
    assert re.search(r"^ENV .*IBSOL_DATA=%s" % DATA_ROOT, r, re.M)
    assert re.search(r"^HEALTHCHECK .*CMD .*ibsol-healthcheck", r, re.M)
    assert re.search(r'^ENTRYPOINT \["ibsol"\]', r, re.M)
    assert "build-essential" not in r and not any(p.endswith("-dev") for p in runtime_packages())
    for src in re.findall(r"^COPY (?!--from)(\S+)", r, re.M):
        assert os.path.exists(os.path.join(SOURCE, src)), "COPY %s: no such file" % src
    with open(os.path.join(SOURCE, ".dockerignore")) as f:
        ignored = f.read().split()
    for pat in ("build*/", "var/", ".git"):
        assert pat in ignored, ".dockerignore does not exclude %s" % pat


def test_dockerfile_build_stage_copies_every_source_folder():
    """The build stage copies the sources folder by folder (so a change to tests or docs keeps the compiled
    layer): every folder the top CMakeLists.txt builds must be among them."""
    build = "\n".join(dockerfile_stages()[1])
    copied = {c.rstrip("/") for c in re.findall(r"^COPY (?!--from)(.*) \S+$", build, re.M) for c in c.split()}
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        top = f.read()
    top = re.sub(r"if\((IBSOL_TESTS|IBSOL_FUZZ)\).*?endif\(\)", "", top, flags=re.S)  # not in the image
    folders = re.findall(r"^add_subdirectory\((\S+)\)", top, re.M)
    assert folders and "CMakeLists.txt" in copied
    for d in folders:
        assert d in copied, "the Dockerfile's build stage does not copy %s/, which CMakeLists.txt builds" % d


def login_defs():
    values = {"UID_MIN": 1000, "UID_MAX": 60000, "SYS_UID_MIN": 100, "SYS_UID_MAX": 999}  # Debian 12's
    if os.path.isfile("/etc/login.defs"):
        with open("/etc/login.defs") as f:
            for k, v in re.findall(r"^\s*((?:SYS_)?UID_(?:MIN|MAX))\s+(\d+)", f.read(), re.M):
                values[k] = int(v)
    return values


def test_dockerfile_user_id_fits_its_range():
    """useradd warns ("uid 10001 is greater than SYS_UID_MAX 999", in every build log) when a fixed uid is
    outside the range of the account's kind: --system wants SYS_UID_MIN..SYS_UID_MAX, an ordinary account
    UID_MIN..UID_MAX (/etc/login.defs)."""
    run = "\n".join(dockerfile_stages()[-1])
    defs = login_defs()
    found = re.findall(r"\buseradd\b((?:\s+-\S+(?:\s+[^-&\s]\S*)?)+)", run)
    assert len(found) == 1, "expected the run stage to create one user (ibsol): %s" % found
    args = found[0]
    m = re.search(r"(?:--uid[= ]|-u )(\d+)", args)
    assert m, "useradd %s: no fixed uid (a bind-mounted data root is chowned to it)" % args.strip()
    prefix = "SYS_" if re.search(r"(?:^|\s)(?:--system|-r)(?=\s|$)", args) else ""
    lo, hi = defs[prefix + "UID_MIN"], defs[prefix + "UID_MAX"]
    assert lo <= int(m.group(1)) <= hi, "useradd %s: uid %s is outside %sUID_MIN..%sUID_MAX (%d..%d): it warns" % (
        args.strip(), m.group(1), prefix, prefix, lo, hi)


def apt_lists_present():
    return bool(glob.glob("/var/lib/apt/lists/*_Packages*")) and shutil.which("apt-cache")


def test_dockerfile_runtime_packages_exist_in_debian():
    pkgs = runtime_packages()
    for want in ("libnng1", "libmsgpackc2", "libcivetweb1", "libjansson4", "libzip4", "libpcre2-8-0",
                 "libpoppler-glib8", "libcairo2", "libtesseract5", "tesseract-ocr-eng", "libssl3", "libuuid1",
                 "libcurl4", "ca-certificates", "curl"):
        assert want in pkgs, "the run stage does not install %s" % want
    if not apt_lists_present():
        pytest.skip("apt has no package lists here (run apt-get update): package names not checked")
    p = subprocess.run(["apt-cache", "policy", *pkgs], capture_output=True, text=True, timeout=120)
    found = dict(re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)", p.stdout, re.M))
    for pkg in pkgs:
        assert found.get(pkg, "(none)") != "(none)", "%s has no installation candidate in Debian 12" % pkg


def test_dockerfile_runtime_packages_cover_the_binaries():
    """Every library a built binary links directly comes from a runtime package or one it depends on."""
    if not apt_lists_present() or not shutil.which("dpkg") or not shutil.which("readelf"):
        pytest.skip("no apt lists, dpkg or readelf here: library coverage of the image not checked")
    bins = [binary(d) for d in DAEMONS] + [os.path.join(BIN, "cli/ibsol-op")]
    if not all(os.access(b, os.X_OK) for b in bins):
        pytest.skip("binaries missing in IBSOL_BIN=%s" % BIN)
    pkgs = set(runtime_packages())
    p = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                        "--no-breaks", "--no-replaces", "--no-enhances", *sorted(pkgs)],
                       capture_output=True, text=True, timeout=120)
    provided = pkgs | {"libc6", "libgcc-s1"} | set(re.findall(r"^\s+\|?Depends: (\S+)", p.stdout, re.M))
    provided = {x.split(":")[0] for x in provided}
    for b in bins:
        ldd = subprocess.run(["ldd", b], capture_output=True, text=True, timeout=60).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        needed = re.findall(r"\(NEEDED\).*\[(.*)\]", subprocess.run(["readelf", "-d", b], capture_output=True,
                                                                    text=True, timeout=60).stdout)
        for lib in needed:
            if re.match(r"lib(asan|ubsan|lsan|tsan)\.", lib):
                continue  # sanitizer builds only
            path = paths.get(lib)
            assert path and path != "not", "%s: %s does not resolve" % (b, lib)
            q = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
            if q.returncode != 0:
                q = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            assert q.returncode == 0, "%s: %s (%s) is from no Debian package" % (b, lib, path)
            owner = q.stdout.split(":")[0]
            assert owner in provided, "%s links %s from %s, which the image's run stage does not install" % (
                os.path.basename(b), lib, owner)


# --- the container scripts, against the real daemons ---------------------------------------------------------

@pytest.fixture
def script_env():
    if not all(os.access(binary(d), os.X_OK) for d in DAEMONS):
        pytest.skip("binaries missing in IBSOL_BIN=%s" % BIN)
    root = tempfile.mkdtemp(prefix="ibsol-deploy-")
    bindir = os.path.join(root, "bin")
    os.makedirs(bindir)
    for d in DAEMONS:
        os.symlink(binary(d), os.path.join(bindir, "ibsol-" + d))
    os.symlink(os.path.join(BIN, "cli/ibsol-op"), os.path.join(bindir, "ibsol-op"))
    os.symlink(HEALTHCHECK, os.path.join(bindir, "ibsol-healthcheck"))
    env = dict(os.environ, IBSOL_BIN_DIR=bindir, IBSOL_DATA=os.path.join(root, "data"), OMP_THREAD_LIMIT="1")
    env = {k: v for k, v in env.items() if not re.match(r"IBSOL_(PACKAGER|MARKETPLACE|RUNNER|EVENTS)_", k)}
    procs = []
    yield root, env, procs
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=30)
    shutil.rmtree(root, ignore_errors=True)


def run_script(script, env, *args, **extra):
    return subprocess.run([script, *args], env=dict(env, **extra), capture_output=True, text=True, timeout=60)


def test_entrypoint_and_healthcheck_with_tcp_wiring(script_env):
    root, env, procs = script_env
    pp, mp, rp, ep, hp = (free_port() for _ in range(5))
    wiring = {
        "packager": {"IBSOL_PACKAGER_URL": "tcp://0.0.0.0:%d" % pp},
        "marketplace": {"IBSOL_MARKETPLACE_URL": "tcp://0.0.0.0:%d" % mp},
        "gateway": {"IBSOL_PACKAGER_URL": "tcp://127.0.0.1:%d" % pp, "IBSOL_MARKETPLACE_URL": "tcp://127.0.0.1:%d" % mp,
                    "IBSOL_RUNNER_URL": "tcp://0.0.0.0:%d" % rp, "IBSOL_EVENTS_URL": "tcp://0.0.0.0:%d" % ep,
                    "IBSOL_HTTP_HOST": "0.0.0.0", "IBSOL_HTTP_PORT": str(hp)},
        "runner": {"IBSOL_RUNNER_URL": "tcp://127.0.0.1:%d" % rp, "IBSOL_EVENTS_URL": "tcp://127.0.0.1:%d" % ep},
    }
    p = run_script(ENTRYPOINT, env)
    assert p.returncode == 2 and "usage: ibsol gateway|packager" in p.stderr
    logs = {}

    def start(d):
        logs[d] = open(os.path.join(root, d + ".log"), "wb")
        procs.append(subprocess.Popen([ENTRYPOINT, d], env=dict(env, **wiring[d]), stdout=logs[d],
                                      stderr=subprocess.STDOUT))

    def wait_healthy(d):
        deadline = time.time() + 20
        while True:
            p = run_script(ENTRYPOINT, env, "healthcheck", d, **wiring[d])
            if p.returncode == 0 or time.time() > deadline:
                return p
            time.sleep(0.2)

    for d in ("packager", "marketplace", "gateway"):
        start(d)
    # With no runner attached yet the gateway is healthy (its HTTP answers, packager and marketplace are up),
    # although /healthz itself answers 503 naming the runner: runners come and go and have their own check.
    for d in ("packager", "marketplace", "gateway"):
        p = wait_healthy(d)
        assert p.returncode == 0, "%s healthcheck: %s%s\n%s log: %s" % (d, p.stdout, p.stderr, d,
                                                                      open(logs[d].name).read()[-2000:])
    assert p.stdout.startswith("gateway: up, no runner attached: ") and '"runners":0' in p.stdout, p.stdout
    assert '"runner":"down"' in p.stdout and '"status":"ERROR"' in p.stdout, p.stdout
    # Every daemon's probe passes once the stack is up (the runner's once it has connected to the gateway).
    start("runner")
    p = wait_healthy("runner")
    assert p.returncode == 0, "runner healthcheck: %s%s" % (p.stdout, p.stderr)
    assert '"services":{"packager":"up","marketplace":"up","runner":"up"}' in run_script(
        HEALTHCHECK, env, "gateway", **wiring["gateway"]).stdout
    # `ibsol op` in the marketplace's own container reaches it on loopback although it listens on 0.0.0.0.
    p = run_script(ENTRYPOINT, env, "op", "marketplace", "marketplace.list", **wiring["marketplace"])
    assert p.returncode == 0 and '"status": "OK"' in p.stdout, p.stderr
    # Any other command runs as it is (docker run IMAGE sh ...).
    assert run_script(ENTRYPOINT, env, "sh", "-c", "echo hi").stdout == "hi\n"
    # A stopped packager fails its probe; a runner that lost the gateway fails its own.
    procs[0].terminate()
    assert procs[0].wait(timeout=30) == 0
    p = run_script(HEALTHCHECK, env, "packager", **wiring["packager"])
    assert p.returncode == 1 and "not reachable" in p.stdout
    # Without packager the gateway is unhealthy, whatever runners it has.
    p = run_script(HEALTHCHECK, env, "gateway", **wiring["gateway"])
    assert p.returncode == 1 and "answered 503" in p.stdout and '"packager":"down"' in p.stdout, p.stdout
    procs[2].terminate()
    assert procs[2].wait(timeout=30) == 0
    time.sleep(0.3)
    p = run_script(HEALTHCHECK, env, "runner", **wiring["runner"])
    assert p.returncode == 1 and "no connection to the gateway" in p.stdout
    p = run_script(HEALTHCHECK, env, "gateway", **wiring["gateway"])
    assert p.returncode == 1
    for d in ("marketplace", "runner"):
        pr = procs[("packager", "marketplace", "gateway", "runner").index(d)]
        pr.terminate()
        assert pr.wait(timeout=30) == 0, open(logs[d].name).read()
    for f in logs.values():
        f.close()


# --- systemd -------------------------------------------------------------------------------------------------

UNITS = ("ibsol-gateway.service", "ibsol-packager.service", "ibsol-marketplace.service", "ibsol-runner@.service")


def unit_text(name):
    with open(os.path.join(SYSTEMD, name)) as f:
        return f.read()


def test_systemd_units_settings():
    for u in UNITS:
        t = unit_text(u)
        for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/ibsol", "PrivateTmp=yes",
                     "ProtectHome=yes", "User=ibsol", "Group=ibsol", "EnvironmentFile=/etc/ibsol/ibsol.env",
                     "Restart=on-failure", "ProtectKernelTunables=yes", "RestrictSUIDSGID=yes",
                     "LockPersonality=yes", "WantedBy=ibsol.target", "PartOf=ibsol.target",
                     "Environment=IBSOL_DATA=/var/lib/ibsol"):
            assert re.search("^%s$" % re.escape(line), t, re.M), "%s lacks %s" % (u, line)
        assert not re.search(r"^MemoryDenyWriteExecute=yes", t, re.M), "%s: W^X breaks PCRE2's JIT" % u
        exe = re.search(r"^ExecStart=(\S+)$", t, re.M).group(1)
        daemon = u.split(".")[0].split("@")[0]
        assert exe == "/usr/local/bin/" + daemon, "%s: ExecStart=%s (cmake --install puts it in /usr/local/bin)" % (u, exe)
    assert re.search(r"^Environment=IBSOL_INSTANCE=%i$", unit_text("ibsol-runner@.service"), re.M)
    assert "WantedBy=multi-user.target" in unit_text("ibsol.target")
    assert subprocess.run(["bash", "-n", os.path.join(SYSTEMD, "install.sh")]).returncode == 0
    assert os.access(os.path.join(SYSTEMD, "install.sh"), os.X_OK)


def test_systemd_analyze_verify():
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.skip("systemd-analyze is not installed (package systemd): units not verified by systemd")
    if not all(os.access(binary(d), os.X_OK) for d in DAEMONS):
        pytest.skip("binaries missing in IBSOL_BIN=%s" % BIN)
    # verify needs ExecStart's binary to exist: a copy of the units pointing at this build's binaries.
    with tempfile.TemporaryDirectory() as tmp:
        for u in UNITS + ("ibsol.target",):
            t = unit_text(u)
            t = re.sub(r"^ExecStart=/usr/local/bin/ibsol-(\w+)$",
                       lambda m: "ExecStart=" + binary(m.group(1)), t, flags=re.M)
            with open(os.path.join(tmp, u), "w") as f:
                f.write(t)
        names = [os.path.join(tmp, u) for u in UNITS if "@" not in u]
        names += [os.path.join(tmp, "ibsol-runner@1.service"), os.path.join(tmp, "ibsol.target")]
        p = subprocess.run([exe, "verify", *names], capture_output=True, text=True, timeout=120, cwd=tmp)
        out = (p.stdout + p.stderr).strip()
        # verify only warns (exit 0) about unknown keys or bad values: any output is a finding.
        assert p.returncode == 0 and not out, out
