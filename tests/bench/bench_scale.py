#!/usr/bin/python3
"""Scale-out benchmarks (issue 12, item 5), each figure against an anchor measured in the same run, the
configurations alternating run by run so a drift of the machine hits both alike:

  1. solution/run over 1,000 invoice PDFs (--files), 10-field program, from the POST to DONE, on 2 runners with
     IBSOL_POOL=1 each   vs  1 runner with IBSOL_POOL=2: the same two file workers, in one process or in two;
     two jobs per layout and run.
     Target: 2 runners take <= 1.0 x the time of 1 runner with 2 workers.
  2. A third runner on another host. Two hosts stand in for two machines:
       host A  this network namespace, limited to 1 CPU by a cgroup quota (cpu.cfs_quota_us): the gateway,
               packager, marketplace and runners r1 and r2 (IBSOL_POOL=1 each);
       host B  a network namespace of its own, joined to host A by a veth link (10.205.0.0/24), limited to 1 CPU
               by its own quota: runner r3 (IBSOL_POOL=1), dialing the gateway over TCP like a runner on
               another machine; the data root is shared as a network volume would be.
     The same job on host A alone and on hosts A + B: the speed-up the third runner brings (ideal 2: it brings
     as much CPU again), and the share of the files it did. No target; needs root and the cgroup v1 cpu
     controller (without them this part is skipped, saying why).

Every job's records are checked against the invoices' true values. Run through tests/bench/run.sh scale.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import requests

import invoices
from bench_foundation import StepError, free_port, log, remove_root, report_head, report_tail, runs_of, verdict
from bench_runner import RUN_SOL, RunnerStack, check_jobs, clean_outputs, install, link_input, run_folders

NFILES = 1000
JOBS_PER_RUN = 2  # jobs per layout and run in the first figure: its two sides differ by a few per cent at most
NET = "10.205.0"
CGROUP_CPU = "/sys/fs/cgroup/cpu"
PERIOD_US = 100000


class HostB:
    """Host B: a network namespace joined to this one by a veth pair, and a cgroup of the cpu controller per host
    (host A's holds every daemon this bench starts on this side). Removed whole by close()."""

    def __init__(self):
        tag = str(os.getpid())
        self.ns = "ibs-bench-b-" + tag
        self.veth = "ibsb" + tag[-8:]
        self.cgroups = {h: os.path.join(CGROUP_CPU, "ibsol-bench-%s-%s" % (h, tag)) for h in "ab"}
        self.made_ns = self.made_link = False

    @staticmethod
    def why_not():
        """Why this machine cannot host the two-host figure, or None."""
        if os.geteuid() != 0:
            return "needs root (a network namespace, a veth link and cgroups)"
        if not shutil.which("ip"):
            return "needs the ip command (iproute2)"
        if not os.path.exists(os.path.join(CGROUP_CPU, "cpu.cfs_quota_us")):
            return "needs the cgroup v1 cpu controller at %s (cpu.cfs_quota_us)" % CGROUP_CPU
        return None

    def sh(self, *args):
        r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise StepError("%s: %s" % (" ".join(args), r.stderr.strip()))

    def build(self):
        self.sh("ip", "netns", "add", self.ns)
        self.made_ns = True
        self.sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        self.made_link = True
        self.sh("ip", "addr", "add", "%s.1/24" % NET, "dev", self.veth)
        self.sh("ip", "link", "set", self.veth, "up")
        self.sh("ip", "-n", self.ns, "addr", "add", "%s.2/24" % NET, "dev", "eth0")
        self.sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        for cg in self.cgroups.values():
            os.makedirs(cg, exist_ok=True)
            with open(os.path.join(cg, "cpu.cfs_period_us"), "w") as f:
                f.write(str(PERIOD_US))

    def quota(self, host, cpus):
        """Limits host ("a" or "b") to cpus CPUs; None lifts the limit."""
        with open(os.path.join(self.cgroups[host], "cpu.cfs_quota_us"), "w") as f:
            f.write(str(-1 if cpus is None else int(cpus * PERIOD_US)))

    def enter(self, host):
        """A preexec_fn: the child joins host's cgroup before it runs (its threads and children follow)."""
        path = os.path.join(self.cgroups[host], "cgroup.procs")

        def join():
            with open(path, "w") as f:
                f.write(str(os.getpid()))
        return join

    def close(self):
        if self.made_link and not self.made_ns:
            subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
        if self.made_ns:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)  # takes the veth pair with it
        for cg in self.cgroups.values():
            if os.path.isdir(cg):
                # Its processes were stopped; a cgroup is removed with rmdir once empty.
                for _ in range(50):
                    try:
                        os.rmdir(cg)
                        break
                    except OSError:
                        time.sleep(0.1)


class ScaleStack(RunnerStack):
    """The runner bench's stack; with host B, runners dial the gateway over TCP on the veth link, every daemon on
    this side runs in host A's cgroup, and runners may run on host B."""

    def __init__(self, bindir, root, hostb):
        super().__init__(bindir, root)
        self.hostb = hostb
        if hostb:
            self.env.update({"IBSOL_RUNNER_URL": "tcp://%s.1:%d" % (NET, free_port()),
                             "IBSOL_EVENTS_URL": "tcp://%s.1:%d" % (NET, free_port())})

    def host_argv(self, host):
        return ["ip", "netns", "exec", self.hostb.ns] if host == "b" else []

    def host_entry(self, host):
        return self.hostb.enter(host or "a") if self.hostb else None

    def describe(self, pools, hosts):
        on = {h: sum(1 for rh in hosts if rh == h) for h in "ab"}
        return "; ".join("host %s: %d runner%s" % (h.upper(), n, "s" if n > 1 else "") for h, n in on.items() if n) \
            + " (pools %s)" % "+".join(str(p) for p in pools)

    def done_by(self, job_id, name, nfiles):
        """Files of job_id that runner `name` did: all but the helpers' when it owns the job, else its own help."""
        if self.ran_by(job_id) == name:
            return nfiles - self.helped(job_id, [n for n in self.runners if n != name])
        return self.helped(job_id, [name])

    def place(self, runners):
        """Stops the runners and starts one per (host, pool) of runners."""
        self.set_runners([p for _, p in runners], [h for h, _ in runners])


def one_job(st, tag, truth):
    dt, jobs, outs = run_folders(st, ["/admin/bench/in/all"], tag)
    check_jobs(st, jobs, truth)
    clean_outputs(st, outs)
    return dt, jobs[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="release build folder (build-bench)")
    ap.add_argument("--gen", required=True, help="the gen_pdf executable")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=NFILES)
    ap.add_argument("--cache", help="folder of generated invoices shared with the other suites (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--wrk-seconds", "--tries", "--floor-files", dest="ignored", help=argparse.SUPPRESS)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    root = tempfile.mkdtemp(prefix="ibsol-bench-scale-", dir=os.environ.get("IBSOL_BENCH_TMP", "/tmp"))
    why_not = HostB.why_not()
    hostb = None if why_not else HostB()
    st = None
    failures, pair, hosts = [], {"two": [], "one": []}, {"a": [], "ab": [], "share": []}
    try:
        if hostb:
            hostb.build()
        st = ScaleStack(os.path.abspath(args.bin), root, hostb)
        docs = invoices.generate(args.gen, args.cache or os.path.join(root, "invoices"), args.files)
        truth = {}
        for path, t, _ in docs:
            link_input(st, "all", path)
            truth[os.path.basename(path)] = t
        st.start()
        install(st, RUN_SOL, invoices.REFINER10)
        for r in range(args.runs):
            for key, runners in (("two", [("a", 1), ("a", 1)]), ("one", [("a", 2)])):
                st.place(runners)
                for k in range(JOBS_PER_RUN):
                    dt, _ = one_job(st, "%s-%d-%d" % (key, r, k), truth)
                    pair[key].append(dt)
                    log("run %d, %s: %.2f s" % (r + 1, st.layout, dt))
        if hostb:
            hostb.quota("a", 1)
            hostb.quota("b", 1)
            for r in range(args.runs):
                for key, runners in (("a", [("a", 1), ("a", 1)]), ("ab", [("a", 1), ("a", 1), ("b", 1)])):
                    st.place(runners)
                    dt, job = one_job(st, "hosts-%s-%d" % (key, r), truth)
                    hosts[key].append(dt)
                    if key == "ab":
                        hosts["share"].append(st.done_by(job, "runner3", len(truth)) / len(truth))
                    log("run %d, %s: %.2f s" % (r + 1, st.layout, dt))
            hostb.quota("a", None)
            hostb.quota("b", None)
    except (StepError, requests.RequestException, OSError) as e:
        failures.append("scale: %s" % e)
    finally:
        if st:
            st.stop()
        if hostb:
            hostb.close()
        remove_root(root, args.keep)

    med = statistics.median
    report_head("scale", args.runs)
    if pair["two"] and len(pair["two"]) == len(pair["one"]):
        ratio = med(pair["two"]) / med(pair["one"])
        print("solution/run, 10 fields, %d PDFs, call to DONE: 2 runners (IBSOL_POOL=1 each) %.2f s; 1 runner with "
              "IBSOL_POOL=2 %.2f s; ratio %.2f (target <= 1.0) %s" % (
                  args.files, med(pair["two"]), med(pair["one"]), ratio, verdict(ratio <= 1.0)))
        print("    runs: 2 runners %s s; 1 runner %s s" % (runs_of(pair["two"]), runs_of(pair["one"])))
    if why_not:
        print("a third runner on another host: not measured here: %s" % why_not)
    elif hosts["ab"] and len(hosts["ab"]) == len(hosts["a"]):
        print("a third runner on another host (network namespace over TCP, 1 CPU quota each host): host A alone "
              "(stack + 2 runners) %.2f s; hosts A + B (+ 1 runner) %.2f s; speed-up %.2fx (ideal 2: CPU doubles); "
              "files done on host B %.0f %%" % (med(hosts["a"]), med(hosts["ab"]), med(hosts["a"]) / med(hosts["ab"]),
                                                100 * med(hosts["share"])))
        print("    runs: host A %s s; hosts A + B %s s" % (runs_of(hosts["a"]), runs_of(hosts["ab"])))
    return report_tail(failures)


if __name__ == "__main__":
    sys.exit(main())
