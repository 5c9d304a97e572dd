#!/usr/bin/env python3
"""Helpers for tests/bench/run.sh.

  report.py --h2load LOGFILE SECS       < h2load output   -> one JSON sample
  report.py --inspect FILE                                -> raw.tsv lines
  report.py --report RAW.tsv [--runs N ...]               -> markdown on stdout

raw.tsv lines: ITEM <tab> PATH <tab> CONC <tab> JSON.  Every figure in the
report is the median of its samples; ratios are taken between medians of the
same run of the harness.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    return sorted_vals[int(p * (len(sorted_vals) - 1))]


def cmd_h2load(logfile, secs):
    text = sys.stdin.read()
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                  text)
    if not m:
        print("no h2load summary", file=sys.stderr)
        sys.exit(1)
    succeeded, failed, errored = int(m.group(4)), int(m.group(5)), int(m.group(6))
    lat = []
    with open(logfile) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "200":
                lat.append(int(parts[2]))
    lat.sort()
    d = re.search(r"traffic: .*?, .*? headers .*?, .*?\((\d+)\) data", text)
    data = int(d.group(1)) if d else 0
    print(json.dumps({
        "calls": len(lat), "errors": failed + errored, "rps": len(lat) / float(secs),
        "p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99),
        "data_per_call": data / succeeded if succeeded else 0,
    }))


def cmd_inspect(path):
    with open(path) as f:
        text = f.read()
    for m in re.finditer(r"control_solve\s+(\d+) ops\s+(\d+) bytes\s+median ([\d.]+) ms\s+p90 ([\d.]+) ms", text):
        print("inspect\t%s\t0\t%s" % (m.group(1), json.dumps(
            {"bytes": int(m.group(2)), "median_ms": float(m.group(3)), "p90_ms": float(m.group(4))})))
    m = re.search(r"\+ isolate.*median ([\d.]+) ms", text)
    if m:
        print("inspect\tisolate-10000\t0\t%s" % json.dumps({"median_ms": float(m.group(1))}))


# ---------- report ----------

def load(raw):
    samples = {}
    with open(raw) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 3)
            if len(parts) != 4:
                continue
            item, path, conc, js = parts
            try:
                v = json.loads(js)
            except ValueError:
                continue
            samples.setdefault((item, path, conc), []).append(v)
    return samples


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def machine(args):
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    rows = [
        ("run (UTC)", "%s to %s" % (args.started, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))),
        ("CPU", "%s, %s online CPUs" % (cpu, os.cpu_count())),
        ("memory", mem),
        ("kernel", platform.release()),
        ("load average at report time", sh("cut -d' ' -f1-3 /proc/loadavg")),
        ("buildgate", "%s, binary sha256 %s… (git HEAD %s%s; -O2 -g)" % (
            sh("'%s' version | head -2 | paste -sd' '" % args.bin), sh("sha256sum '%s' | cut -c1-12" % args.bin),
            sh("git rev-parse --short HEAD"),
            ", with other engineers' uncommitted work in the tree" if sh("git status --porcelain -uno") else "")),
        ("backend", "dockerd %s (Debian docker.io; BuildKit v0.8 inside)" % args.docker_version),
        ("native server", "bgbench server: grpc-go %s, moby.buildkit.v1.Control.ListWorkers from memory" %
         sh("dpkg-query -W -f='${Version}' golang-google-grpc-dev")),
        ("peer proxy", sh("nghttpx --version | head -1") + " (1 worker, h2c both sides)"),
        ("byte relay", "socat %s (`-b 262144`, one process per connection, bytes forwarded unparsed)" %
         sh("dpkg-query -W -f='${Version}' socat")),
        ("load", "bgbench (Go %s, grpc-go) and %s" % (sh("go version | cut -d' ' -f3"), sh("h2load --version | head -1"))),
        ("samples", "%d runs per unary figure (%s s each, after 0.5 s warm-up), 3 per other figure; "
         "medians shown" % (args.runs, args.secs)),
        ("open files limit", args.nofile),
    ]
    return rows


def fmt(v, nd=0):
    if v is None:
        return "n/a"
    if nd == 0:
        return "{:,.0f}".format(v)
    return "{:,.{}f}".format(v, nd)


def ratio(a, b, nd=2):
    if a is None or b in (None, 0):
        return "n/a"
    return "{:.{}f}".format(a / b, nd)


def unit(v, u):
    """A figure with its unit, or a bare n/a when it was not measured."""
    return v if v == "n/a" else "%s %s" % (v, u)


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**MISSED**"


def per_call(x, key):
    """The proxy's CPU per call in µs: its CPU over the whole sample (warm-up
    included) divided by the calls made in that time at the measured rate."""
    if key not in x or not x.get("rps") or not x.get("cpu_wall_s"):
        return None
    return x[key] / (x["rps"] * x["cpu_wall_s"]) * 1e6


def unary_table(samples, item, paths, direct, notes):
    lines = ["| path | conc | calls/s | × direct | p50 µs | p99 µs | p50 added µs | proxy CPU µs/call, user / sys "
             "| errors | runs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    figs = {}
    for conc in ("1", "16"):
        d = samples.get((item, direct, conc), [])
        d_rps = med([s.get("rps") for s in d if not s.get("failed")])
        d_p50 = med([s.get("p50_us") for s in d if not s.get("failed")])
        for p in paths:
            ss = [s for s in samples.get((item, p, conc), []) if not s.get("failed")]
            nfail = len(samples.get((item, p, conc), [])) - len(ss)
            rps = med([s.get("rps") for s in ss])
            p50 = med([s.get("p50_us") for s in ss])
            p99 = med([s.get("p99_us") for s in ss])
            errs = sum(s.get("errors", 0) for s in ss)
            figs[(p, conc)] = (rps, p50, p99)
            added = "—" if p == direct or p50 is None or d_p50 is None else fmt(p50 - d_p50)
            cu = med([per_call(x, "cpu_user_s") for x in ss])
            cs = med([per_call(x, "cpu_sys_s") for x in ss])
            cpu = "—" if cu is None or cs is None else "%s / %s" % (fmt(cu, 1), fmt(cs, 1))
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d%s |" % (
                notes.get(p, p), conc, fmt(rps), ratio(rps, d_rps), fmt(p50), fmt(p99), added, cpu, errs, len(ss),
                " (%d failed)" % nfail if nfail else ""))
    return lines, figs


def cmd_report(args):
    s = load(args.report)
    out = []
    w = out.append
    w("# buildgate benchmarks (`make bench`)")
    w("")
    w("Generated by `tests/bench/run.sh`; raw samples beside this file in `latest.raw.tsv`. "
      "Every figure is the **median** of its samples, and every ratio compares medians taken in the same run, "
      "on the same machine, with the paths interleaved sample by sample so that noise from other work on the "
      "machine lands on all of them alike.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    for k, v in machine(args):
        w("| %s | %s |" % (k, v))
    w("")
    w("The machine is shared (2 CPUs; other engineers' builds and tests run at the same time), so absolute "
      "figures move from run to run; the ratios are the meaningful part. Client, proxy and server all run on "
      "these same 2 CPUs, so at concurrency 16 the machine is saturated and throughput measures the total CPU "
      "cost per call of client + path + server.")
    w("")
    w("**Byte relay.** Every table also has a path through socat, which forwards bytes without parsing them: no "
      "HTTP/2, no policy, one process per connection, 256 KiB buffers. It cannot inspect anything, so it is not "
      "a design buildgate could adopt; it is the floor, what one more process in the path costs on this machine "
      "before any work is done. Where a target is missed, the Targets table shows the relay's figure from the "
      "same run beside buildgate's.")
    w("")

    # ----- unary -----
    w("## 1. Unary gRPC calls")
    w("")
    w("Closed loop: *conc* client connections, one call in flight on each; calls/s over the measured window, "
      "latency percentiles over every call in it. *Proxy CPU* is the proxy process's user and system time "
      "(from /proc, socat's reaped per-connection children included) over the whole sample, warm-up "
      "included, divided by the calls made in that time at the measured rate. On a machine without spare "
      "CPUs, system time is mostly the socket reads, writes and wake-ups any hop makes; user time is the "
      "proxy's own work.")
    w("")
    w("### 1a. Real backend: dockerd %s (Docker-style `/grpc`)" % args.docker_version)
    w("")
    w("Call: `/moby.buildkit.v1.Control/Info` with an empty request. dockerd's BuildKit (v0.8) does not "
      "implement Info, so its gRPC server answers `UNIMPLEMENTED` (trailers-only) without running any handler: "
      "the backend work is as small as it gets, and the call still crosses the whole path (buildgate's policy "
      "allows Info as `@stable` and forwards it; the backend's status is what the client gets). "
      "`ListWorkers` was not used here because dockerd runs platform detection in it (milliseconds per call).")
    w("")
    w("dockerd speaks only HTTP/1.1 + `/grpc` upgrade, so neither h2load nor nghttpx can reach it: this table "
      "compares the direct path with buildgate and the byte relay, all driven by `bgbench unary` (grpc-go):")
    w("")
    w("- **direct**: client does `POST /grpc` + `Upgrade: h2c` to dockerd itself (as buildx's docker driver does);")
    w("- **buildgate, default policy, /grpc**: the same client, same upgrade, to buildgate's socket; buildgate "
      "upgrades its own connection to dockerd;")
    w("- **buildgate, default policy, native**: native gRPC (h2c prior knowledge) to buildgate, which uses `/grpc` "
      "toward dockerd;")
    w("- **buildgate, multi-tenant + audit, native**: `%s` with `--audit-log`, client running as uid 1001 "
      "(tenant `ci`, profile `builder`, isolation on): every call is matched to a tenant, checked and audited. "
      "The profile's `source_policy` is set to null for the bench (run.sh does it): buildgate refuses a source "
      "policy in front of BuildKit < v0.11, which could not enforce it, so every Solve to dockerd 20.10 would be denied."
      % args.policy)
    w("- **byte relay**: the same client and upgrade through socat, which passes every byte on to dockerd.")
    w("")
    notes_a = {"direct": "direct (client → dockerd /grpc)", "bg-default-docker": "buildgate, default policy, /grpc",
               "bg-default-native": "buildgate, default policy, native",
               "bg-tenant-native": "buildgate, multi-tenant + audit, native",
               "relay": "byte relay (socat) → dockerd, /grpc passed through"}
    la, fa = unary_table(s, "unary-A", ["direct", "bg-default-docker", "bg-default-native", "bg-tenant-native",
                                        "relay"], "direct", notes_a)
    out.extend(la)
    w("")
    w("### 1b. Native gRPC backend: `bgbench server` (grpc-go, unix socket)")
    w("")
    w("Call: `/moby.buildkit.v1.Control/ListWorkers`, answered from memory with one worker record shaped like "
      "dockerd's (206-byte message). A native HTTP/2 backend lets every path reach the same server: "
      "**direct** (client → server), **buildgate** (client → buildgate `--backend unix://…` → server), "
      "**nghttpx** (client → nghttpx, h2c front, `proto=h2` backend → server), **byte relay** "
      "(client → socat → server).")
    w("")
    w("Driven by `bgbench unary` (grpc-go):")
    w("")
    notes_b = {"direct": "direct (client → server)", "bg-default": "buildgate, default policy",
               "bg-tenant": "buildgate, multi-tenant + audit (uid 1001)", "nghttpx": "nghttpx",
               "relay": "byte relay (socat)"}
    lb, fb = unary_table(s, "unary-B", ["direct", "bg-default", "bg-tenant", "nghttpx", "relay"], "direct", notes_b)
    out.extend(lb)
    w("")
    w("Driven by h2load (C client, `-m 1`, the 5-byte empty `ListWorkersRequest` as body, "
      "`content-type: application/grpc`, `te: trailers`; h2load counts HTTP 200, the data-per-call column "
      "shows the answer really came from the server):")
    w("")
    lh, fh = unary_table(s, "h2load-B", ["direct", "bg-default", "nghttpx", "relay"], "direct", notes_b)
    out.extend(lh)
    dpc = [x.get("data_per_call") for k, v in s.items() if k[0] == "h2load-B" for x in v if "data_per_call" in x]
    if dpc:
        w("")
        w("h2load data bytes per call: min %.0f, max %.0f (a local denial would carry none)." % (min(dpc), max(dpc)))
    aud = s.get(("meta", "audit-lines-ci", "0"))
    if aud:
        w("")
        w("Audit log of the multi-tenant native-server buildgate: %s lines name tenant `ci`." % aud[0]["value"])
    w("")

    # ----- session -----
    w("## 2. Session bulk transfer")
    w("")
    ss = {k: v for k, v in s.items() if k[0] == "session"}
    skip = s.get(("meta", "session-skipped", "0"))

    def sess_mbps(x):
        t = x["client_secs"] - x["hash"]["secs"]
        return x["mb"] * 1.048576 / t if t > 0 else None

    sess = {}
    if ss:
        w("`bgclient bigcontext --size %dM` (tests/interop/client): a %d MiB random file in an `llb.Local` context, "
          "copied to scratch and exported with the local exporter, so the bytes cross the session twice "
          "(context up to BuildKit, export back down), plus one snapshot copy inside BuildKit. bgclient reports the "
          "solve time plus its own sha256 of the exported file (0.1 s resolution); the sha256 time, measured right "
          "after on the same file with the same Go code (`bgbench hashtime`), is taken off. MB/s = %d MiB / that "
          "time; paths interleaved run by run, with dockerd's build cache pruned and dirty pages synced "
          "between runs, so that no run pays for the writeback of the one before." % (args.context_mb, args.context_mb, args.context_mb))
        w("")
        w("A session travels one of two ways, and each has its own direct baseline: a Docker-style `/session` "
          "upgrade (what buildx's docker driver uses; buildgate splices it to dockerd's `/session`), or "
          "`Control.Session` on the gRPC connection itself (what a native BuildKit client uses; the direct "
          "baseline is the same client with `--session-over-grpc`, which makes dockerd's `/grpc` connection carry "
          "it). *× same transport* compares each buildgate path with the direct path of its own transport.")
        w("")
        w("| path | MB/s | × direct /session | × same transport | solve s (as reported) | sha256 s | runs | failed attempts |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        paths = (("direct", "direct (dockerd /grpc + /session)", "direct"),
                 ("bg-docker-session", "buildgate, Docker-style /grpc + /session (spliced)", "direct"),
                 ("direct-grpc-session", "direct (dockerd /grpc, Control.Session on it)", "direct-grpc-session"),
                 ("bg-native-session", "buildgate, native gRPC + Control.Session", "direct-grpc-session"),
                 ("relay-session", "byte relay (socat) → dockerd /grpc + /session", "direct"),
                 ("relay-grpc-session", "byte relay (socat) → dockerd /grpc, Control.Session on it",
                  "direct-grpc-session"))
        for p, name, _ in paths:
            xs = [x for x in ss.get(("session", p, "1"), []) if not x.get("failed")]
            sess[p] = med([sess_mbps(x) for x in xs])
        d = sess.get("direct")
        for p, name, base in paths:
            xs = [x for x in ss.get(("session", p, "1"), []) if not x.get("failed")]
            nfail = len(s.get(("session-failure", p, "1"), []))
            w("| %s | %s | %s | %s | %s | %s | %d | %d |" % (
                name, fmt(sess[p], 1), ratio(sess[p], d), ratio(sess[p], sess.get(base)),
                fmt(med([x["client_secs"] for x in xs]), 1), fmt(med([x["hash"]["secs"] for x in xs]), 2), len(xs),
                nfail))
        sess["base"] = {p: base for p, _, base in paths}
    else:
        w("Not measured: %s." % (skip[0]["value"] if skip else "no samples"))
    w("")

    # ----- inspect -----
    w("## 3. Policy evaluation of Solve requests")
    w("")
    ins = {k: v for k, v in s.items() if k[0] == "inspect"}
    if ins:
        w("`tests/bench/bench_inspect` (policy layer only, no sockets): `bg_inspect_control_solve` over a "
          "`ControlSolve` whose Definition has N ops (source / exec / file mix, each depending on the previous "
          "one), with a restrictive profile so every LLB rule is evaluated. Median of the tool's own medians over 3 invocations.")
        w("")
        w("| ops | message bytes | median ms | p90 ms |")
        w("|---:|---:|---:|---:|")
        for n in ("100", "1000", "10000"):
            xs = ins.get(("inspect", n, "0"), [])
            w("| %s | %s | %s | %s |" % (fmt(int(n)), fmt(med([x.get("bytes") for x in xs])),
                                         fmt(med([x.get("median_ms") for x in xs]), 3),
                                         fmt(med([x.get("p90_ms") for x in xs]), 3)))
        xs = ins.get(("inspect", "isolate-10000", "0"), [])
        if xs:
            w("")
            w("10,000 ops with isolation on (session-bound local sources rewritten, graph re-keyed): median %s ms."
              % fmt(med([x.get("median_ms") for x in xs]), 3))
    else:
        sk = s.get(("meta", "inspect-skipped", "0"))
        w("Not measured: %s." % (sk[0]["value"] if sk else "no samples"))
    w("")

    # ----- memory -----
    w("## 4. Memory")
    w("")
    w("Idle connections: `bgbench idle` opens N unix-socket connections, each sends the HTTP/2 preface and "
      "SETTINGS, reads the server's SETTINGS, acknowledges them, then holds (no stream, so buildgate has no "
      "backend connection for it). A fresh proxy process per sample; VmRSS from /proc/PID/status, minus the "
      "same process's VmRSS just before the connections. 3 samples each.")
    w("")
    w("| proxy | idle conns | baseline RSS KiB | RSS KiB | per connection (bytes) | runs |")
    w("|---|---:|---:|---:|---:|---:|")
    idle = {}
    for proxy in ("buildgate", "nghttpx"):
        for n in ("1000", "10000"):
            xs = [x for x in s.get(("idle", proxy, n), []) if not x.get("failed")]
            if not xs:
                sk = s.get(("meta", "idle-%s-skipped" % n, "0"))
                w("| %s | %s | n/a | n/a | %s | 0 |" % (proxy, fmt(int(n)), sk[0]["value"] if sk else "n/a"))
                continue
            pc = med([x["per_conn_b"] for x in xs])
            idle[(proxy, n)] = pc
            w("| %s | %s | %s | %s | %s | %d |" % (proxy, fmt(int(n)), fmt(med([x["base_kb"] for x in xs])),
                                                   fmt(med([x["rss_kb"] for x in xs])), fmt(pc), len(xs)))
    w("")
    w("16 concurrent builds: `bgbench solve -c 16 -rounds 2` (16 connections, each running a Solve of a "
      "scratch image with 32 `Mkfile` actions of 4 KiB plus a `Status` stream beside it, twice) through a fresh "
      "buildgate in front of dockerd; peak = VmHWM after the builds.")
    w("")
    w("| buildgate | baseline RSS KiB | peak RSS KiB | peak − baseline KiB | builds | runs |")
    w("|---|---:|---:|---:|---:|---:|")
    for p, name in (("bg-default", "default policy"), ("bg-tenant", "multi-tenant + audit (uid 1001)")):
        xs = [x for x in s.get(("builds", p, "16"), []) if not x.get("failed")]
        nf = len(s.get(("builds", p, "16"), [])) - len(xs)
        w("| %s | %s | %s | %s | %s | %d%s |" % (
            name, fmt(med([x["base_kb"] for x in xs])), fmt(med([x["peak_kb"] for x in xs])),
            fmt(med([x["peak_kb"] - x["base_kb"] for x in xs])), fmt(med([x["run"].get("builds") for x in xs])),
            len(xs), " (%d failed)" % nf if nf else ""))
    w("")

    w("Inspection memory (`tests/bench/memory.sh`, also `tests/bench/run.sh --only memory`): `bgclient stall` "
      "opens 32 `Control.Solve` streams, sends each a gRPC prefix declaring 16 MiB and then as much of the body as "
      "flow control allows, never the last byte, and waits; a fresh buildgate per sample "
      "(`--inspect-stall-timeout 3`, default budgets). Growth = VmHWM after the streams ended − VmRSS before.")
    w("")
    w("| client connections | growth MiB (median) | max | streams ended (status) | last ended after s | runs |")
    w("|---:|---:|---:|---|---:|---:|")
    stall_max = None
    for c in ("1", "4", "32"):
        xs = [x for x in s.get(("memstall", "conns-" + c, "32"), []) if not x.get("failed")]
        if not xs:
            w("| %s | n/a | n/a | n/a | n/a | 0 |" % c)
            continue
        g = [(x["hwm_kb"] - x["base_kb"]) / 1024.0 for x in xs]
        stall_max = max([stall_max or 0] + g)
        w("| %s | %s | %s | %s | %s | %d |" % (c, fmt(med(g), 1), fmt(max(g), 1),
                                            ", ".join(sorted(set("%d (%s)" % (x["ended"], x["statuses"]) for x in xs))),
                                            fmt(med([x["last_end_s"] for x in xs]), 1), len(xs)))
    w("")
    mc = s.get(("memcheck", "mounts-4m", "0"), [])
    check_peak = med([x["peak_kb"] for x in mc]) / 1024.0 if mc else None
    w("`buildgate check` on a `Control.Solve` of %s bytes made of 4,194,304 empty ExecOp `mounts`: peak RSS "
      "(ru_maxrss) %s MiB, decision %s (%d runs)." % (
          fmt(mc[0]["bytes"]) if mc else "n/a", fmt(check_peak, 1),
          ", ".join(sorted(set("%s/exit %d" % (x["decision"], x["exit"]) for x in mc))) or "n/a", len(mc)))
    w("")

    # ----- targets -----
    w("## Targets")
    w("")
    w("| target | buildgate | byte relay, same run | |")
    w("|---|---|---|---|")

    def g(figs, p, c, i):
        v = figs.get((p, c))
        return v[i] if v else None

    for tname, figs, direct, bgp in (("dockerd, default /grpc", fa, "direct", "bg-default-docker"),
                                     ("dockerd, default native", fa, "direct", "bg-default-native"),
                                     ("native server, default (grpc-go client)", fb, "direct", "bg-default"),
                                     ("native server, default (h2load)", fh, "direct", "bg-default")):
        for c in ("1", "16"):
            d, b = g(figs, direct, c, 0), g(figs, bgp, c, 0)
            ok = None if d is None or b is None else b >= 0.85 * d
            w("| unary throughput ≥ 0.85 × direct: %s, conc %s | %s | %s | %s |" % (
                tname, c, unit(ratio(b, d), "×"), unit(ratio(g(figs, "relay", c, 0), d), "×"), verdict(ok)))
    for tname, figs in (("grpc-go client", fb), ("h2load", fh)):
        for c in ("1", "16"):
            n, b = g(figs, "nghttpx", c, 0), g(figs, "bg-default", c, 0)
            ok = None if n is None or b is None else b > n
            w("| unary throughput above nghttpx (%s, conc %s) | buildgate %s vs nghttpx %s calls/s (%s ×) | — | %s |" % (
                tname, c, fmt(b), fmt(n), ratio(b, n, 3), verdict(ok)))
    for tname, figs, direct, bgp in (("dockerd, default /grpc", fa, "direct", "bg-default-docker"),
                                     ("dockerd, default native", fa, "direct", "bg-default-native"),
                                     ("native server, default (grpc-go)", fb, "direct", "bg-default"),
                                     ("native server, default (h2load)", fh, "direct", "bg-default")):
        d, b = g(figs, direct, "1", 1), g(figs, bgp, "1", 1)
        ok = None if d is None or b is None else (b - d) <= 50
        r = g(figs, "relay", "1", 1)
        w("| added p50 latency at conc 1 ≤ 50 µs: %s | %s | %s | %s |" % (
            tname, unit(fmt(None if d is None or b is None else b - d), "µs"),
            unit(fmt(None if d is None or r is None else r - d), "µs"), verdict(ok)))
    if sess:
        for p, relay, what in (("bg-docker-session", "relay-session", "/session spliced, vs direct /session"),
                               ("bg-native-session", "relay-grpc-session",
                                "native Control.Session, vs direct Control.Session")):
            d, b = sess.get(sess["base"][p]), sess.get(p)
            ok = None if d is None or b is None else b >= 0.95 * d
            w("| session bulk ≥ 0.95 × direct: %s | %s | %s | %s |" % (
                what, unit(ratio(b, d, 3), "×"), unit(ratio(sess.get(relay), d, 3), "×"), verdict(ok)))
    else:
        w("| session bulk ≥ 0.95 × direct | not measured | — | not measured |")
    x = med([v.get("median_ms") for v in ins.get(("inspect", "10000", "0"), [])]) if ins else None
    w("| 10,000-op Solve evaluated in ≤ 5 ms | %s ms | — | %s |" % (fmt(x, 3), verdict(None if x is None else x <= 5)))
    xi = med([v.get("median_ms") for v in ins.get(("inspect", "isolate-10000", "0"), [])]) if ins else None
    if xi is not None:
        w("| the same with isolation on (namespaced sessions, graph re-keyed) | %s ms | — | %s |" % (
            fmt(xi, 3), verdict(xi <= 5)))
    for n in ("1000", "10000"):
        pc = idle.get(("buildgate", n))
        w("| ≤ 16 KiB RSS per idle connection (%s conns) | %s bytes | — | %s |" % (
            fmt(int(n)), fmt(pc), verdict(None if pc is None else pc <= 16384)))
    w("| RSS growth under 32 stalled 16 MiB Solve streams ≤ 64 MiB (worst sample) | %s MiB | — | %s |" % (
        fmt(stall_max, 1), verdict(None if stall_max is None else stall_max <= 64)))
    w("| peak RSS of `buildgate check` on the 4M-mount Solve ≤ 96 MiB | %s MiB | — | %s |" % (
        fmt(check_peak, 1), verdict(None if check_peak is None else check_peak <= 96)))
    w("")
    w("What was changed to meet the targets, before/after figures, and why the misses remain (perf/strace evidence): "
      "[`profile.md`](profile.md) beside this file (reproduce with `tests/bench/profile.sh`).")
    w("")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--h2load", nargs=2)
    ap.add_argument("--inspect")
    ap.add_argument("--report")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--secs", default="?")
    ap.add_argument("--context-mb", type=int, default=512)
    ap.add_argument("--docker-version", default="?")
    ap.add_argument("--policy", default="?")
    ap.add_argument("--nofile", default="?")
    ap.add_argument("--bin", default="./buildgate")
    ap.add_argument("--started", default="?")
    a = ap.parse_args()
    if a.h2load:
        cmd_h2load(*a.h2load)
    elif a.inspect:
        cmd_inspect(a.inspect)
    elif a.report:
        cmd_report(a)
    else:
        ap.error("nothing to do")


if __name__ == "__main__":
    main()
