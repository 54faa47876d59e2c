#!/usr/bin/env python3
"""Renders bench results (results.json of bench/lib/harness.py) as the Markdown report.

    python3 bench/lib/report.py bench/results.json > bench/REPORT.md

The goals are those of the benchmark issue; a missed goal says so next to its number.
bench/findings.md (hand-written: what a profile showed, what would close a gap) is appended
when it exists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

BENCH = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------ formatting


def f(v: Optional[float], digits: int = 2, unit: str = "") -> str:
    if v is None:
        return "–"
    return f"{v:,.{digits}f}{unit}"


def mib(b: Optional[float]) -> str:
    return "–" if b is None else f"{b / 2**20:,.1f} MiB"


def us(ns: Optional[float]) -> str:
    if ns is None:
        return "–"
    if ns < 1000:
        return f"{ns:,.0f} ns"
    return f"{ns / 1000:,.2f} µs"


def verdict(ok: Optional[bool]) -> str:
    return "–" if ok is None else ("met" if ok else "**MISSED**")


def ratio_or_none(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or not b else a / b


def table(header: List[str], rows: List[List[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------------ goals


def goals(doc: Dict[str, Any]) -> List[Tuple[str, str, str, Optional[bool]]]:
    """(goal, measured, target, met) for every goal the run has numbers for."""
    out: List[Tuple[str, str, str, Optional[bool]]] = []
    cases = doc.get("cases", {})
    gw = cases.get("gateway", {})
    for name, d in sorted(gw.get("derived", {}).items()):
        r = d.get("throughput_vs_nginx")
        out.append((f"gateway throughput vs nginx, {name}", f(r, 2, "×"), "≥ 0.80×", None if r is None else r >= 0.8))
        for label, rate in (("light", gw.get("light_rate")), ("half_peak", gw.get("half_peak_rate"))):
            r = d.get(f"added_p50_vs_nginx_{label}")
            a, n = d.get(f"added_p50_ms_{label}"), d.get(f"nginx_added_p50_ms_{label}")
            shown = f"{f(r, 2, '×')} ({f(a and a * 1000, 0)} µs vs nginx {f(n and n * 1000, 0)} µs)"
            if n is not None and n <= 0:
                shown += " (nginx added nothing measurable)"
            out.append(
                (
                    f"added p50 vs nginx's added p50 at {f(rate, 0)} req/s, {name}",
                    shown,
                    "≤ 1.5×",
                    None if r is None or (n is not None and n <= 0) else r <= 1.5,
                )
            )
        a = d.get("added_p99_ms_half_peak")
        out.append(
            (
                f"added p99 at half of mlgate's peak ({f(gw.get('half_peak_rate'), 0)} req/s), {name}",
                f(a, 3, " ms"),
                "< 1 ms",
                None if a is None else a < 1.0,
            )
        )
    e2e = cases.get("e2e", {})
    for call, d in e2e.get("derived", {}).items():
        r = d.get("mlgate_vs_direct")
        out.append((f"end to end throughput vs direct MLflow, {call}", f(r, 3, "×"), "≥ 0.95×", None if r is None else r >= 0.95))
    benches = cases.get("micro", {}).get("benches", {})
    for name, b in sorted(benches.items()):
        m = b["median_ns"]
        if name.startswith("policy_decision/") and name.endswith("/1000"):
            out.append((f"policy decision, 1,000 statements ({name.split('/')[1]}; issues 5 and 6)", us(m), "< 10 µs median", m < 10_000))
        if name == "sigv4/verify_cached_key":
            out.append(("SigV4 verification without body hashing (header form, cached key)", us(m), "< 5 µs", m < 5_000))
        if name.startswith("jwt_verify/"):
            _, path, alg = name.split("/")
            what = "full verification" if path == "full" else "cached path (token verified before)"
            out.append((f"JWT {what}, {alg}", us(m), NO_GOAL, None))
    search = cases.get("search", {})
    for call, d in search.get("derived", {}).items():
        n, exps = d["max_results"], search.get("experiments", 0)
        p50 = d["p50_ms_half_rate"]
        out.append(
            (
                f"SearchExperiments, {exps:,} experiments, half readable, max_results {n}:"
                " throughput vs direct MLflow (p50 per page at a rate both sustain beside it)",
                f"{f(d['mlgate_vs_direct'], 2, '×')}; {f(p50['mlgate'], 1)} ms vs direct {f(p50['direct'], 1)} ms",
                "≥ 0.90×",
                None if d["mlgate_vs_direct"] is None else d["mlgate_vs_direct"] >= 0.9,
            )
        )
    mem = cases.get("memory", {})
    if "peak_rss_growth_bytes" in mem:
        g = mem["peak_rss_growth_bytes"]
        size = mem.get("artifact_bytes", 0)
        out.append((f"peak RSS growth, {mib(size)} up + down (stub upstream)", mib(g), "≤ 64 MiB", g <= 64 * 2**20))
        idle = mem["idle_after_start"]["VmRSS"]
        out.append(("idle RSS after start", mib(idle), "< 30 MiB", idle < 30 * 2**20))
    real = mem.get("mlflow", {})
    if "peak_rss_growth_bytes" in real:
        g = real["peak_rss_growth_bytes"]
        out.append((f"peak RSS growth, {mib(real['artifact_bytes'])} up + down (MLflow's artifact proxy)", mib(g), "≤ 64 MiB", g <= 64 * 2**20))
    return out


NO_GOAL = "no numeric goal: reported"


# ------------------------------------------------------------------------------ sections


def section_meta(doc: Dict[str, Any]) -> str:
    m = doc["meta"]
    mach = m["machine"]
    tools = m["tools"]
    # Runs before wrk replaced it name their load generator "oha".
    load_generator = tools.get("load_generator") or tools["oha"]
    st = m["settings"]
    load0 = ", ".join(f"{x:.2f}" for x in mach.get("loadavg_at_start", []))
    load1 = ", ".join(f"{x:.2f}" for x in m.get("loadavg_at_end", []))
    lines = [
        f"- **Date**: {m['date']}  **Commit**: `{m['commit']}`{' (with uncommitted changes)' if m.get('dirty') else ''}"
        f"  **Mode**: {m['mode']}  **Run time**: {f(m.get('seconds'), 0)} s",
        f"- **Machine**: {mach['cpu']}, {mach['cores']} cores, {mib(mach['memory_bytes'])}, Linux {mach['kernel']};"
        f" load average {load0} at start, {load1} at end",
        f"- **Tools**: {load_generator}; {tools['nginx']}; MLflow {tools['mlflow']}; {tools['rustc']}; {tools['curl']}",
        f"- **Settings**: gateway {st['rounds']} rounds × {st['duration_s']} s per case at c={st['concurrency']};"
        f" end to end {st['e2e_rounds']} rounds × {st['e2e_duration_s']} s at c={st['e2e_concurrency']};"
        f" search over {st.get('search_experiments', 0):,} experiments;"
        f" artifact {mib(st['artifact_bytes'])} (stub), {mib(st.get('mlflow_artifact_bytes'))} (MLflow); criterion `{' '.join(st['criterion_args'])}`",
        "",
        "> This is a shared 2-core VM: the load generator, the proxy under test and the upstream all",
        "> run on the same two cores (and other engineers' builds may run beside them), so absolute",
        "> numbers are pessimistic and noisy. The ratios, measured side by side in the same run with",
        "> the cases alternating, are what count.",
    ]
    return "\n".join(lines)


def section_goals(doc: Dict[str, Any]) -> str:
    rows = [[g, meas, tgt, verdict(ok)] for g, meas, tgt, ok in goals(doc)]
    failed = [n for n, c in doc["cases"].items() if c.get("status") != "ok"]
    text = table(["goal", "measured", "target", ""], rows)
    if failed:
        text += "\n\nCases that failed to run: " + ", ".join(
            f"**{n}** ({doc['cases'][n].get('error', '?')})" for n in failed
        )
    return text


def unavailable(case: Optional[Dict[str, Any]]) -> Optional[str]:
    """What a section says instead of its numbers when its case did not run or failed."""
    if not case:
        return "_Not run._"
    if case.get("status") != "ok":
        return f"_Failed to run: {case.get('error')}_"
    return None


def lat_rows(tab: Dict[str, Any], base: str = "direct") -> List[List[str]]:
    rows = []
    d = tab.get(base, {})
    for name, t in tab.items():
        if not isinstance(t, dict) or "p50_ms" not in t:
            continue
        add50 = None if name == base else (t["p50_ms"] - d["p50_ms"]) * 1000
        add99 = None if name == base else (t["p99_ms"] - d["p99_ms"]) * 1000
        rows.append(
            [
                name,
                f(t["rps"], 0),
                f(t["p50_ms"], 3),
                f(t["p90_ms"], 3),
                f(t["p99_ms"], 3),
                f(t["p999_ms"], 3),
                f(add50, 0),
                f(add99, 0),
            ]
        )
    return rows


LAT_HEADER = ["target", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "added p50 µs", "added p99 µs"]


def section_gateway(doc: Dict[str, Any]) -> str:
    gw = doc["cases"].get("gateway")
    if (note := unavailable(gw)) is not None:
        return note
    call = gw["call"]
    peak = gw["peak"]
    rows = []
    for name, t in peak.items():
        rows.append(
            [
                name,
                f(t["rps"], 0),
                f(t["rps"] / peak["nginx"]["rps"], 2, "×") if peak["nginx"]["rps"] else "–",
                f(t["rps"] / peak["direct"]["rps"], 2, "×") if peak["direct"]["rps"] else "–",
                f(t["p50_ms"], 3),
                f(t["p99_ms"], 3),
                f(t.get("cpu_us_per_request"), 0),
                f(ratio_or_none(t.get("cpu_us_per_request"), peak["nginx"].get("cpu_us_per_request")), 1, "×"),
            ]
        )
    rss = gw.get("mlgate_rss", {})
    parts = [
        f"`{call['method']} {call['path']}` answered by the stub with a {call['response_bytes']}-byte MLflow"
        " experiment (JSON). mlgate runs with the shipped policies (`deploy/demo.toml`: admins, readers,"
        " model-approvers) as `mlflow-reader`; every request is authenticated, classified, authorized by the"
        " policy engine, forwarded and audited (audit log on disk). nginx is a plain reverse proxy"
        " (`bench/nginx.conf.tmpl`: no auth, keep-alive upstream pool, access log on).",
        "",
        f"**Peak throughput** (closed loop, {gw['concurrency']} connections; latencies here include queueing):",
        "",
        table(["target", "req/s", "vs nginx", "vs direct", "p50 ms", "p99 ms", "CPU µs/req", "CPU vs nginx"], rows),
        "",
        "CPU µs/req: user + system CPU time of the target's own processes (the stub for `direct`, nginx's"
        " master and workers, the mlgate process) per 2xx answer during the run: the least noise-sensitive"
        " measure of a proxy's cost on a shared machine.",
        "",
        f"**Latency at a fixed light rate of {f(gw['light_rate'], 0)} req/s** (paced; each request timed from when it was due: no coordinated omission):",
        "",
        table(LAT_HEADER, lat_rows(gw["light"])),
        "",
        f"**Latency at half of mlgate's peak, {f(gw['half_peak_rate'], 0)} req/s** (same rate for every target):",
        "",
        table(LAT_HEADER, lat_rows(gw["half_peak"])),
    ]
    if gw.get("skipped"):
        parts += ["", "Not measured: " + "; ".join(f"`{k}`: {v}" for k, v in gw["skipped"].items()) + "."]
    parts += [
        "",
        "Credentials: `mlgate-basic` HTTP Basic (verified once, then cached), `mlgate-token` an mlgate API"
        " token, `mlgate-cookie` a browser session from the sign-in page, `mlgate-jwt` an EdDSA ID token"
        " from a stub OIDC issuer on loopback (group claim mapped to `readers`; mlgate caches a verified"
        " token for 60 s), `mlgate-sigv4` an mlgate access key, the request signed by botocore (header form)"
        " at the start of each run; `mlgate-token-metrics` the API token through a second mlgate with"
        " Prometheus metrics on (`--admin-listen`), and `mlgate-token-traces` through a third with every"
        " request traced (`--otlp-endpoint`, spans exported to a sink), beside `mlgate-token` without either.",
    ]
    if rss:
        parts += [
            "",
            f"mlgate's RSS in this case: {mib(rss['idle_after_start']['VmRSS'])} after start,"
            f" {mib(rss['after_load']['VmRSS'])} after the load (peak {mib(rss['after_load']['VmHWM'])}).",
        ]
    return "\n".join(parts)


def section_e2e(doc: Dict[str, Any]) -> str:
    e = doc["cases"].get("e2e")
    if (note := unavailable(e)) is not None:
        return note
    parts = [
        "Real MLflow 3.17.2 (`--workers 1`, SQLite backend, artifact proxy) started by"
        " `scripts/lib/mlgate_stack.py`; mlgate in front of it with the shipped policies, as `mlflow-admin`"
        " over HTTP Basic; MLflow's own `--app-name basic-auth` (a second MLflow server, default settings:"
        " no credential cache) as `admin` over HTTP Basic. The experiment has 20 runs. CPU µs/req is the"
        " CPU time of the target's processes (MLflow's for direct and basic-auth, mlgate's alone for mlgate,"
        " with the MLflow behind it in the last column) per 2xx answer.",
        "",
    ]
    for call, spec in e["calls"].items():
        closed = e["closed"][call]
        rows = []
        for name, t in closed.items():
            rows.append(
                [
                    name,
                    f(t["rps"], 1),
                    f(t["rps"] / closed["direct"]["rps"], 3, "×") if closed["direct"]["rps"] else "–",
                    f(t["p50_ms"], 1),
                    f(t["p99_ms"], 1),
                    f(t.get("cpu_us_per_request"), 0),
                    f(t.get("upstream_cpu_us_per_request"), 0),
                ]
            )
        body = f" `{spec['body']}`" if spec.get("body") else ""
        parts += [
            f"**{call}**: `{spec['method']} {spec['path']}`{body}",
            "",
            table(
                [f"closed loop c={e['concurrency']}", "req/s", "vs direct", "p50 ms", "p99 ms", "CPU µs/req", "MLflow CPU µs/req behind it"],
                rows,
            ),
            "",
        ]
        half = e["half_rate"][call]
        rows = []
        for name in ("direct", "mlgate"):
            t = half[name]
            add = None if name == "direct" else t["p50_ms"] - half["direct"]["p50_ms"]
            add99 = None if name == "direct" else t["p99_ms"] - half["direct"]["p99_ms"]
            rows.append([name, f(t["rps"], 1), f(t["p50_ms"], 2), f(t["p99_ms"], 2), f(add, 2), f(add99, 2)])
        parts += [
            table([f"fixed rate {f(half['rate'], 1)} req/s", "req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"], rows),
            "",
        ]
    return "\n".join(parts)


def section_micro(doc: Dict[str, Any]) -> str:
    m = doc["cases"].get("micro")
    if (note := unavailable(m)) is not None:
        return note
    rows = [
        [f"`{name}`", us(b["median_ns"]), f"{us(b['median_ci_ns'][0])} – {us(b['median_ci_ns'][1])}"]
        for name, b in sorted(m["benches"].items())
    ]
    return "\n".join(
        [
            "criterion, `cargo bench --profile release --workspace` with `--bench decision`,"
            " `--bench catalog`, `--bench verify`, `--bench jwt`"
            " (sources in `crates/*/benches/`; what each one measures is in its header comment)."
            " `policy_decision/*/1000` is also issue 5's decision latency with 1,000 policy statements."
            " `jwt_verify/full/*` is a bearer ID token's first verification (header, key from the JWKS cache,"
            " signature, claims, audience, federated principal); `jwt_verify/cached/*` a repeated token"
            " (SHA-256 of the token and one cache read).",
            "",
            table(["benchmark", "median", "95% CI of the median"], rows),
        ]
    )


def round_trip_tables(m: Dict[str, Any], direct: str) -> List[str]:
    """mlgate's RSS around one artifact round trip, and the transfer times direct and through it."""
    t = m["transfers"]
    size = m["artifact_bytes"]

    def rate(x: Dict[str, float]) -> str:
        return f"{x['seconds']:.2f} s ({size / 2**20 / x['seconds']:,.0f} MiB/s)" if x["seconds"] else "–"

    return [
        table(
            ["", "mlgate"],
            [
                ["idle RSS after start", mib(m["idle_after_start"]["VmRSS"])],
                ["RSS before the transfers", mib(m["before_transfer"]["VmRSS"])],
                ["peak RSS (VmHWM) after upload", mib(m["after_upload"]["VmHWM"])],
                ["peak RSS (VmHWM) after download", mib(m["after_download"]["VmHWM"])],
                ["**peak growth**", mib(m["peak_rss_growth_bytes"])],
            ],
        ),
        "",
        table(
            ["transfer (curl)", direct, "through mlgate"],
            [
                ["upload (PUT)", rate(t["direct_upload"]), rate(t["mlgate_upload"])],
                ["download (GET)", rate(t["direct_download"]), rate(t["mlgate_download"])],
            ],
        ),
    ]


def section_memory(doc: Dict[str, Any]) -> str:
    m = doc["cases"].get("memory")
    if (note := unavailable(m)) is not None:
        return note
    parts = [
        f"A {mib(m['artifact_bytes'])} artifact PUT and then GET through mlgate's artifact route"
        " (`/api/2.0/mlflow-artifacts/artifacts/1/<run>/artifacts/big.bin`, `mlflow-admin`), upstream: "
        + m["upstream"]
        + ". RSS from `/proc/<pid>/status` (VmRSS sampled every 20 ms, and VmHWM).",
        "",
        *round_trip_tables(m, "direct to the stub"),
    ]
    real = m.get("mlflow")
    if real:
        parts += [
            "",
            f"**Through MLflow's artifact proxy**: the same round trip with a {mib(real['artifact_bytes'])} artifact"
            " of a run created through mlgate, upstream: " + real["upstream"] + ". The stub measure above"
            " isolates mlgate and carries the goals; this one is what a user's upload and download cost.",
            "",
            *round_trip_tables(real, "direct to MLflow"),
        ]
    return "\n".join(parts)


def section_search(doc: Dict[str, Any]) -> str:
    c = doc["cases"].get("search")
    if (note := unavailable(c)) is not None:
        return note
    parts = [
        f"Issue 5's benchmark of search filtering. Real MLflow 3.17.2 (`--workers 1`, SQLite) holding"
        f" {c['experiments']:,} experiments, alternately `team-a/exp-N` and `team-b/exp-N` (two tags each;"
        f" seeded in {c['seed_seconds']} s, not measured). `team-a-reader` has `mlgate grant --level READ"
        " --experiments 'team-a/*'`, so half of what MLflow returns is readable: mlgate drops team-b's items"
        " and asks MLflow for further pages until the page is full; since the grant bounds every readable"
        " name to `team-a/`, mlgate asks MLflow with `name LIKE 'team-a/%'` ANDed to the request's filter"
        " (docs/filtering.md, \"Narrowing the upstream search\"). Targets: `direct` (the same request"
        " to MLflow: a page of both teams' experiments), `mlgate` (team-a-reader, a full page of team-a's),"
        " `direct-name-like` (MLflow with `filter: name LIKE 'team-a/%'`: the same answer selected in SQL,"
        " what a team-aware MLflow would do). Goal: mlgate ≥ 0.9× direct; the table gives the throughput"
        " ratio and the latency per page.",
        "",
    ]
    for call, spec in c["calls"].items():
        closed = c["closed"][call]
        d = c["derived"][call]
        rows = [
            [
                name,
                f(t["rps"], 1),
                f(ratio_or_none(t["rps"], closed["direct"]["rps"]), 2, "×"),
                f(t["p50_ms"], 1),
                f(t["p99_ms"], 1),
                f(t.get("cpu_us_per_request"), 0),
                f(t.get("upstream_cpu_us_per_request"), 0),
            ]
            for name, t in closed.items()
        ]
        half = c["half_rate"][call]
        lat = [
            [name, f(half[name]["rps"], 1), f(half[name]["p50_ms"], 1), f(half[name]["p90_ms"], 1), f(half[name]["p99_ms"], 1)]
            for name in ("direct", "mlgate")
        ]
        parts += [
            f"**max_results {d['max_results']}**: `{spec['method']} {spec['path']}` `{spec['body']}`",
            "",
            table(
                [f"closed loop c={c['concurrency']}", "pages/s", "vs direct", "p50 ms", "p99 ms", "CPU µs/page", "MLflow CPU µs/page behind it"],
                rows,
            ),
            "",
            table([f"fixed rate {f(half['rate'], 2)} pages/s (half of the slower side's throughput)", "pages/s", "p50 ms", "p90 ms", "p99 ms"], lat),
            "",
            f"mlgate's own CPU: {f(d['mlgate_cpu_us_per_page'], 0)} µs per page, ≈ {f(d['mlgate_cpu_us_per_item_examined'], 1)} µs"
            f" per item MLflow returned (≈ {2 * d['max_results']} items looked at per page, half kept): parsing,"
            " one policy decision per item, re-serializing, the sealed page token. MLflow's CPU per page behind"
            f" mlgate: {f(d['upstream_cpu_us_per_page_via_mlgate'], 0)} µs vs {f(d['upstream_cpu_us_per_page_direct'], 0)} µs"
            " direct (it serves about twice the items).",
            "",
        ]
    return "\n".join(parts).rstrip()


METHOD = """\
- **One run, side by side.** `bench/run` starts every process itself on 127.0.0.1 and stops it
  afterwards. Within each comparison the targets alternate (A B C, A B C, …) and each number is the
  median over the rounds.
- **Load generator: wrk** (Debian's package) with `bench/lib/wrk.lua`. Throughput is a closed loop
  at fixed concurrency; latency is measured at a *fixed request rate*: the script sends on a fixed
  schedule and times a request that went out late (its connection still busy) from when it was
  due, so a stall is charged to every request it delayed (no coordinated omission). Every target
  gets the same rate.
- **Added latency** is the target's percentile minus the direct (stub or MLflow) percentile at the
  same rate in the same run.
- **CPU µs/req** is the user + system CPU time of the target's own processes (from
  `/proc/<pid>/stat`, summed over the process group) per 2xx answer: the measure least disturbed
  by other work on the machine.
- **nginx** is Debian's nginx with `worker_processes` = cores (mlgate's runtime also uses one worker
  thread per core), an upstream keep-alive pool, and an access log (mlgate writes an audit record
  per request).
- **Memory** is read from `/proc/<pid>/status` of the mlgate process.
- **Microbenchmarks** use criterion; the median and its 95% confidence interval are reported.
- `bench/run --quick` runs every case for a second or two (CI); only full runs are published here.
"""


def section_replicas(doc: Dict[str, Any]) -> str:
    rep = doc["cases"].get("replicas")
    missing = unavailable(rep)
    if missing:
        return missing
    rows = [
        [name, f(r["rps"], 0), f(r["p50_ms"], 3), f(r["p99_ms"], 3), f(r["requests"], 0),
         "–" if r.get("pg_transactions") is None else f(r["pg_transactions"], 0)]
        for name, r in rep["setups"].items()
    ]
    rev = rep.get("revocation_ms") or {}
    return "\n".join([
        f"The gateway case's request (a token, in front of the stub), closed loop with "
        f"{rep['concurrency']} connections in total split evenly over the replicas, "
        f"{rep['duration_s']} s. p50/p99 are the worst replica's. PostgreSQL transactions are "
        "pg_stat_database's `xact_commit` on mlgate's database over the load, to compare with "
        "the requests: decisions come from the replicas' caches, so the database sees only the "
        "change-counter checks and the caches' 2 s TTL reloads, a number that does not grow "
        "with the requests.",
        "",
        table(["setup", "req/s", "p50 ms", "p99 ms", "requests", "PostgreSQL transactions"], rows),
        "",
        f"Revocation propagation (3 replicas, `mlgate token revoke` until each replica refuses the "
        f"token; {rev.get('samples', 0)} refusals): p50 {f(rev.get('p50'), 1)} ms, "
        f"p99 {f(rev.get('p99'), 1)} ms, max {f(rev.get('max'), 1)} ms (bound: 1 s).",
    ])


def render(doc: Dict[str, Any]) -> str:
    parts = [
        "# mlgate benchmark report",
        "",
        "Generated by `bench/run` (raw numbers: `bench/results.json`; method: `docs/benchmarks.md`).",
        "",
        section_meta(doc),
        "",
        "## Goals",
        "",
        section_goals(doc),
        "",
        "## 1. Gateway cost alone (stub upstream)",
        "",
        section_gateway(doc),
        "",
        "## 2. End to end with real MLflow",
        "",
        section_e2e(doc),
        "",
        "## 3. Microbenchmarks",
        "",
        section_micro(doc),
        "",
        "## 4. Memory",
        "",
        section_memory(doc),
        "",
        "## 5. Search filtering on many experiments (issue 5)",
        "",
        section_search(doc),
        "",
        "## 6. Replicas on PostgreSQL",
        "",
        section_replicas(doc),
        "",
        "## Method",
        "",
        METHOD,
    ]
    findings = BENCH / "findings.md"
    if findings.exists():
        parts += ["", findings.read_text().rstrip(), ""]
    return "\n".join(parts).rstrip() + "\n"


def summary_lines(doc: Dict[str, Any]) -> str:
    lines = ["bench summary:"]
    for name, c in doc["cases"].items():
        lines.append(f"  {name:<8} {c.get('status', '?'):<7} {c.get('seconds', 0):6.1f}s" + (f"  {c.get('error')}" if c.get("error") else ""))
    for g, meas, tgt, ok in goals(doc):
        lines.append(f"  {'ok  ' if ok else ('MISS' if ok is not None else '  - ')} {g}: {meas} (goal {tgt})")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report.py results.json")
    sys.stdout.write(render(json.loads(Path(sys.argv[1]).read_text())))
