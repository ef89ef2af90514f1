#!/usr/bin/env python3
"""The twin against the real loopback cluster (issue #10, point 6).

Starts deploy/loopback/cluster.toml as real processes (`minitwin up`), measures this machine's
loopback once (a node-to-node hop from the gateway's upstream latency on reads, the users' HTTP
hop from cache hits, a write's commit on a primary under load; a bare fdatasync for the
record), writes those into
results/loopback/calibrated.toml (the shipped scenario with its three `calibrated:` lines
replaced), then for each offered rate runs the real cluster under `minitwin load` (open loop,
the scenario's mix) and the twin (`minitwin run` on seeds 1-3), and kills the primary of shard
0 (SIGKILL) TRIALS times to time the failover (the kill to the replica's "promoted to primary"
log line) against the twin's `failover` on as many seeds. Prints the table and writes
results/loopback/compare.csv and compare.txt. Stops every process it started by pid.

Usage: calibration/loopback.py [--rates 200,1000,2000,4000] [--for 20] [--trials 5]
Needs: target/release/minitwin (cargo build --release) and python3.
"""
import argparse, json, math, os, re, signal, subprocess, sys, time, urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/minitwin")
CLUSTER = os.path.join(ROOT, "deploy/loopback/cluster.toml")
SCENARIO = os.path.join(ROOT, "deploy/loopback/scenario.toml")
OUT = os.path.join(ROOT, "results/loopback")
DATA = os.path.join(OUT, "data")
LOGS = os.path.join(OUT, "logs")
procs = []


def up(extra=(), for_s=600):
    p = subprocess.Popen([BIN, "up", CLUSTER, "--fresh", "--for", str(for_s), *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    procs.append(p)
    lines = []
    for line in p.stdout:
        lines.append(line)
        if "Ctrl-C stops every process" in line:
            return p, lines
    raise SystemExit("minitwin up did not start:\n" + "".join(lines))


def down(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    rest = p.communicate(timeout=30)[0]
    procs.remove(p)
    return rest


def load(rate=None, for_s=10, warmup_s=2, mix=None, seed=1):
    args = [BIN, "load", CLUSTER, "--for", str(for_s), "--warmup-s", str(warmup_s),
            "--seed", str(seed), "--out", os.path.join(OUT, "load.csv")]
    if rate:
        args += ["--rate", str(rate)]
    if mix:
        args += ["--mix", mix]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    thr = float(re.search(r"throughput\s+([\d.]+)", out).group(1))
    m = re.search(r"p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    errs = float(re.search(r"error ratio\s+([\d.]+)", out).group(1))
    return {"throughput": thr, "p50": float(m.group(1)), "p99": float(m.group(2)), "errors": errs}


def summary_quantiles(http, name):
    text = urllib.request.urlopen(f"http://{http}/metrics", timeout=5).read().decode()
    q = dict(re.findall(name + r'\{quantile="([\d.]+)"\} ([\d.eE+]+)', text))
    return float(q["0.5"]) / 1e6, float(q["0.99"]) / 1e6


def fsync_ms(n=400):
    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    ts = []
    for _ in range(n):
        os.write(fd, b"x" * 32)
        t = time.perf_counter()
        os.fdatasync(fd)
        ts.append((time.perf_counter() - t) * 1e3)
    os.close(fd)
    os.unlink(path)
    ts.sort()
    return ts[0], ts[n // 2], ts[int(n * 0.99)]


def fit_gamma_hops(p50, p99, hops):
    """min and extra mean of a shifted exponential per hop, so that `hops` of them in a row
    have this median and 99th percentile (the sum's exponential part is Gamma(hops))."""
    gamma = {2: (1.678, 6.638), 4: (3.672, 10.045)}[hops]
    extra = max((p99 - p50) / (gamma[1] - gamma[0]), 0.001)
    low = max((p50 - gamma[0] * extra) / hops, 0.0)
    return round(low, 4), round(extra, 4)


def calibrate():
    p, _ = up()
    try:
        time.sleep(0.5)
        load(rate=500, for_s=8, mix="0,1,0")  # reads: gateway -> service -> store and back
        up_p50, up_p99 = summary_quantiles("127.0.0.1:9100", "gateway_upstream_latency_ns")
        static = load(rate=500, for_s=8, mix="1,0,0")  # cache hits: the users' hop alone
        load(rate=500, for_s=8, mix="0,0,1")  # writes: the primary's commit
        commit_p50, commit_p99 = summary_quantiles("127.0.0.1:9103", "store_commit_latency_ns")
    finally:
        down(p)
    service_ms = 0.05  # the scenario's service_time
    hop = fit_gamma_hops(up_p50 - service_ms, up_p99 - service_ms, 4)
    users = fit_gamma_hops(static["p50"], static["p99"], 2)
    fmin, f50, f99 = fsync_ms()
    # The disk as the driver sees it: a write's commit on the primary under load (the
    # fdatasync on a blocking thread, the wakeups around it, group commit; the replica's
    # acknowledgement arrives sooner), a log-normal through its p50 and p99. A bare fdatasync
    # (measured too, for the record) leaves out the processes' scheduling on shared cores.
    disk = (round(commit_p50, 4), round(max(math.log(commit_p99 / commit_p50), 0.01) / 2.3263, 4))
    text = open(SCENARIO).read()
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("# calibrated: node hop"):
            lines[i + 1] = f'default_link = {{ latency = {{ dist = "shifted_exp", min_ms = {hop[0]}, extra_mean_ms = {hop[1]} }} }}'
        if line.startswith("# calibrated: users hop"):
            lines[i + 1] = f'latency = {{ dist = "shifted_exp", min_ms = {users[0]}, extra_mean_ms = {users[1]} }}'
        if line.startswith("# calibrated: disk sync"):
            lines[i + 1] = f'disk = {{ sync_latency = {{ dist = "lognormal", median_ms = {disk[0]}, sigma = {disk[1]} }} }}'
    path = os.path.join(OUT, "calibrated.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    facts = {
        "gateway upstream latency on reads (4 hops + 0.05 ms service), p50/p99 ms": (up_p50, up_p99),
        "users' cache hits (2 HTTP hops + the gateway), p50/p99 ms": (static["p50"], static["p99"]),
        "fdatasync of the data disk alone, min/p50/p99 ms": (fmin, f50, f99),
        "a write's commit on store-0 under 500 writes/s, p50/p99 ms": (commit_p50, commit_p99),
        "node hop fitted: min_ms, extra_mean_ms": hop,
        "users hop fitted: min_ms, extra_mean_ms": users,
        "disk sync fitted (log-normal): median_ms, sigma": disk,
    }
    return path, facts


def twin(scenario, rate, for_s, seeds=(1, 2, 3), extra=()):
    rows = []
    for s in seeds:
        args = [BIN, "run", scenario, "--seed", str(s), "--out", os.path.join(OUT, "twin"),
                "--set", f"duration_s={for_s + 5}", "--set", "warmup_s=5"]
        if rate:
            args += ["--set", f"workload.rate.rps={rate}"]
        out = subprocess.run([*args, *extra], capture_output=True, text=True, cwd=ROOT).stdout
        thr = float(re.search(r"throughput\s+([\d.]+)", out).group(1))
        m = re.search(r"latency p50/p99/p999\s+([\d.]+) / ([\d.]+)", out)
        fo = re.search(r"failover\s+([\d.]+) s", out)
        rows.append({"throughput": thr, "p50": float(m.group(1)), "p99": float(m.group(2)),
                     "failover": float(fo.group(1)) if fo else None})
    mean = lambda k: sum(r[k] for r in rows) / len(rows)
    return {k: mean(k) for k in ("throughput", "p50", "p99")}, rows


def real_failover(trials, kill_at=8.0):
    times = []
    for t in range(trials):
        p, _ = up(["--kill", f"store-0@{kill_at}"], for_s=kill_at + 10)
        load(rate=200, for_s=kill_at + 8, warmup_s=0, seed=t + 1)
        rest = down(p)
        kill_ms = int(re.search(r"killed store-0 .* at Unix ms (\d+)", rest).group(1))
        promoted = None
        with open(os.path.join(LOGS, "store-0-r1.jsonl")) as f:
            for line in f:
                if "promoted to primary" in line:
                    ts = json.loads(line)["timestamp"]
                    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
                    promoted = dt.timestamp() * 1000
                    break
        if promoted is None:
            raise SystemExit(f"failover trial {t + 1}: store-0-r1 never logged a promotion")
        times.append((promoted - kill_ms) / 1000)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="200,1000,2000,4000")
    ap.add_argument("--for", dest="for_s", type=float, default=20.0)
    ap.add_argument("--trials", type=int, default=5)
    a = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        raise SystemExit(f"{BIN} is missing: run `cargo build --release` first")
    os.makedirs(OUT, exist_ok=True)
    scenario, facts = calibrate()
    report = ["# The twin against the real loopback cluster (calibration/loopback.py)", ""]
    report += [f"calibration: {k}: {', '.join(f'{x:.3f}' for x in v)}" for k, v in facts.items()]
    report += ["", f"{'offered':>8} {'':>6} {'throughput':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"]
    csv = ["rate,side,throughput_rps,latency_ms_p50,latency_ms_p99,error_ratio"]
    for rate in [int(r) for r in a.rates.split(",")]:
        p, _ = up()
        try:
            real = load(rate=rate, for_s=a.for_s + 5, warmup_s=5)
        finally:
            down(p)
        tw, _ = twin(scenario, rate, a.for_s)
        for side, r in (("real", real), ("twin", tw)):
            report.append(f"{rate:>8} {side:>6} {r['throughput']:>11.1f} {r['p50']:>8.3f} {r['p99']:>8.3f} {r.get('errors', 0):>7.4f}")
            csv.append(f"{rate},{side},{r['throughput']:.1f},{r['p50']:.3f},{r['p99']:.3f},{r.get('errors', 0):.5f}")
        report.append(f"{rate:>8} {'ratio':>6} {tw['throughput'] / real['throughput']:>11.3f} {tw['p50'] / real['p50']:>8.3f} {tw['p99'] / real['p99']:>8.3f}")
    real_fo = real_failover(a.trials)
    fo_scenario = os.path.join(OUT, "calibrated-failover.toml")
    with open(scenario) as f:
        text = f.read()
    with open(fo_scenario, "w") as f:
        f.write(text + '\n[[faults]]\nkind = "kill"\nnode = "store-0"\nat_s = 13.0\n')
    _, rows = twin(fo_scenario, 200, 20, seeds=range(1, a.trials + 1))
    twin_fo = [r["failover"] for r in rows]
    report += ["", "failover of shard 0 (SIGKILL of its primary to the replica's promotion), seconds:",
               f"  real ({a.trials} trials): {', '.join(f'{x:.2f}' for x in real_fo)}  (min {min(real_fo):.2f}, max {max(real_fo):.2f})",
               f"  twin ({a.trials} seeds):  {', '.join(f'{x:.2f}' for x in twin_fo)}  (min {min(twin_fo):.2f}, max {max(twin_fo):.2f})"]
    for x in real_fo:
        csv.append(f"failover,real,,,,{x:.3f}")
    for x in twin_fo:
        csv.append(f"failover,twin,,,,{x:.3f}")
    text = "\n".join(report) + "\n"
    print(text, end="")
    with open(os.path.join(OUT, "compare.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "compare.csv"), "w") as f:
        f.write("\n".join(csv) + "\n")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in list(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
