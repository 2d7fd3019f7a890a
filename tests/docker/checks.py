#!/usr/bin/env python3
"""Checks of the running docker compose lab (scripts/test.sh runs them after `docker compose up`).

  checks.py trace      --app URL --jaeger URL   one request -> one trace with frontend, backend
                                                and ml spans chained parent -> child (Jaeger API)
  checks.py targets    --prometheus URL         every scrape target is up
  checks.py dashboards --prometheus URL FILE... every panel's PromQL returns data; provisioning parses
  checks.py outage     --app URL --compose CMD  ml-canary stopped: canary requests fail fast and
                                                readably, ml/stable serves the rest; started again:
                                                canary recovers within a bound

Only the standard library (and PyYAML, which yamllint brings into .venv). Exit 0 = pass, 1 = the
check failed (with a message saying what was seen), 2 = usage.
"""

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

PHOTO = os.path.join(os.path.dirname(__file__), "../../ml/tests/fixtures/photos/coffee.jpg")


class CheckFailed(Exception):
    pass


def http(method, url, body=None, headers=None, timeout=30.0):
    """Returns (status, headers, body bytes); HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def analyze(app, extra_headers=None, timeout=30.0):
    """POSTs the coffee photo to the frontend's /analyze as a browser form would, asking for JSON."""
    boundary = uuid.uuid4().hex
    with open(PHOTO, "rb") as f:
        image = f.read()
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"coffee.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + image + f"\r\n--{boundary}--\r\n".encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}", "accept": "application/json"}
    headers.update(extra_headers or {})
    started = time.monotonic()
    status, resp_headers, data = http("POST", app.rstrip("/") + "/analyze", body, headers, timeout)
    return status, resp_headers, data, time.monotonic() - started


def get_json(url, timeout=10.0):
    status, _, data = http("GET", url, timeout=timeout)
    if status != 200:
        raise CheckFailed(f"GET {url}: {status} {data[:200]!r}")
    return json.loads(data)


def check_trace(args):
    trace_id = secrets.token_hex(16)
    parent = secrets.token_hex(8)
    status, _, data, _ = analyze(args.app, {"traceparent": f"00-{trace_id}-{parent}-01"})
    if status != 200:
        raise CheckFailed(f"the traced request answered {status}: {data[:300]!r}")
    url = f"{args.jaeger.rstrip('/')}/api/traces/{trace_id}"
    deadline = time.monotonic() + args.wait
    seen = set()
    dangling = set()
    while True:
        status, _, body = http("GET", url)
        if status == 200:
            traces = json.loads(body).get("data") or []
            if len(traces) != 1:
                raise CheckFailed(f"{url}: {len(traces)} traces, want exactly 1")
            trace = traces[0]
            services = {k: p["serviceName"] for k, p in trace["processes"].items()}
            seen = set(services.values())
            ids = {s["spanID"] for s in trace["spans"]}
            # Envoy exports its spans on its own schedule: wait until no span's parent is missing
            # (but the one the request carried in).
            dangling = {r["spanID"] for s in trace["spans"] for r in s.get("references", [])
                        if r.get("refType") == "CHILD_OF"} - ids - {parent}
            if {"frontend", "backend", "ml"} <= seen and not dangling:
                break
        if time.monotonic() > deadline:
            raise CheckFailed(f"trace {trace_id}: after {args.wait}s Jaeger has spans of {sorted(seen) or 'nothing'} (HTTP {status}), missing parents {sorted(dangling)}")
        time.sleep(1)
    spans = {s["spanID"]: s for s in trace["spans"]}
    for s in trace["spans"]:
        if s["traceID"] != trace_id:
            raise CheckFailed(f"span {s['spanID']} has trace id {s['traceID']}, want {trace_id}")

    def parent_of(span):
        refs = [r for r in span.get("references", []) if r.get("refType") == "CHILD_OF"]
        return refs[0]["spanID"] if refs else None

    def service(span):
        return services[span["processID"]]

    def ancestors(span):
        chain = []
        while (pid := parent_of(span)) is not None and pid in spans:
            span = spans[pid]
            chain.append(service(span))
        return chain, parent_of(span)

    by_service = {}
    for s in trace["spans"]:
        by_service.setdefault(service(s), []).append(s)
    # The first (outermost) span of each tier: its nearest ancestor of another service must be the
    # tier before it; the frontend's outermost span's parent is the span id the request carried.
    order = ["frontend", "backend", "ml"]
    for tier, caller in zip(order, [None] + order[:-1]):
        outer = [s for s in by_service[tier] if tier not in ancestors(s)[0]]
        if not outer:
            raise CheckFailed(f"no outermost {tier} span")
        for s in outer:
            chain, root_parent = ancestors(s)
            others = [c for c in chain if c != "envoy"]
            if caller is None:
                if others or root_parent != parent:
                    raise CheckFailed(f"frontend span {s['operationName']} is not a child of the request's span {parent} (ancestors {chain}, root parent {root_parent})")
            elif not others or others[0] != caller:
                raise CheckFailed(f"{tier} span {s['operationName']} is not a descendant of a {caller} span (ancestors {chain})")
    print(f"trace {trace_id}: {len(spans)} spans from {sorted(seen)}, chained frontend -> backend -> ml"
          + (" with Envoy's spans between them" if "envoy" in seen else ""))


def check_targets(args):
    data = get_json(f"{args.prometheus.rstrip('/')}/api/v1/targets?state=active")
    targets = data["data"]["activeTargets"]
    if not targets:
        raise CheckFailed("Prometheus has no active targets")
    down = [f"{t['labels'].get('job')} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in targets if t["health"] != "up"]
    for t in targets:
        print(f"{t['health']:>7}  {t['labels'].get('job')}  {t['scrapeUrl']}")
    if down:
        raise CheckFailed("targets not up:\n  " + "\n  ".join(down))
    if args.expect and len(targets) != args.expect:
        raise CheckFailed(f"{len(targets)} targets, want {args.expect}")


def check_dashboards(args):
    import yaml  # from .venv (yamllint depends on PyYAML)

    for path in args.provisioning:
        with open(path) as f:
            doc = yaml.safe_load(f)
        if not isinstance(doc, dict) or doc.get("apiVersion") != 1:
            raise CheckFailed(f"{path}: not a Grafana provisioning file (apiVersion 1)")
        print(f"{path}: parses")
    empty = []
    count = 0
    for path in args.files:
        with open(path) as f:
            dashboard = json.load(f)
        panels = dashboard.get("panels") or []
        if not panels:
            raise CheckFailed(f"{path}: no panels")
        for panel in panels:
            for target in panel.get("targets", []):
                expr = target["expr"]
                count += 1
                q = urllib.parse.urlencode({"query": expr})
                result = get_json(f"{args.prometheus.rstrip('/')}/api/v1/query?{q}")
                series = result["data"]["result"]
                print(f"{len(series):3} series  {panel['title']}")
                if not series:
                    empty.append(f"{path}: {panel['title']}: {expr}")
    if empty:
        raise CheckFailed("panels whose query returns no data:\n  " + "\n  ".join(empty))
    print(f"{count} panel queries return data")


def compose(args, *words):
    cmd = shlex.split(args.compose) + list(words)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def check_outage(args):
    canary = {"x-canary": "true"}
    status, _, _, _ = analyze(args.app, canary)
    if status != 200:
        raise CheckFailed(f"before the outage a canary request answered {status}")
    compose(args, "stop", "ml-canary")
    try:
        status, headers, data, took = analyze(args.app, canary, timeout=args.bound * 3)
        print(f"ml-canary stopped: canary request -> {status} in {took:.2f}s: {data[:200].decode(errors='replace')}")
        if status < 500:
            raise CheckFailed(f"a canary request with ml-canary stopped answered {status}, want a 5xx")
        if took > args.bound:
            raise CheckFailed(f"the canary error took {took:.2f}s, bound {args.bound}s")
        try:
            error = json.loads(data)["error"]
            if not error.get("code") or not error.get("message"):
                raise KeyError("code/message")
        except (ValueError, KeyError, TypeError) as err:
            raise CheckFailed(f"the canary error is not the JSON error body ({err}): {data[:200]!r}")
        # Unpinned traffic: the ml hop's weights still send ~10 % to ml-canary, and those requests
        # must fail the same fast, readable way; every other one must succeed on ml/stable.
        ok = 0
        for _ in range(args.unpinned):
            status, _, data, took = analyze(args.app, timeout=args.bound * 3)
            if status == 200:
                trail = json.loads(data).get("served_by") or []
                if not trail or trail[-1] != "ml/stable":
                    raise CheckFailed(f"with ml-canary stopped a request succeeded via {trail}")
                ok += 1
            elif status < 500 or took > args.bound:
                raise CheckFailed(f"with ml-canary stopped an unpinned request answered {status} in {took:.2f}s")
        print(f"unpinned requests with ml-canary stopped: {ok}/{args.unpinned} served by ml/stable, the rest fast 5xx")
        if ok < args.unpinned * 0.6:
            raise CheckFailed(f"only {ok}/{args.unpinned} unpinned requests succeeded; ml/stable should carry ~90 %")
    finally:
        compose(args, "start", "ml-canary")
    started = time.monotonic()
    while True:
        status, headers, data, _ = analyze(args.app, canary, timeout=args.bound * 3)
        if status == 200:
            trail = json.loads(data).get("served_by")
            print(f"canary recovered after {time.monotonic() - started:.1f}s: {trail}")
            if trail != ["frontend/canary", "backend/canary", "ml/canary"]:
                raise CheckFailed(f"recovered canary trail is {trail}")
            return
        if time.monotonic() - started > args.recover:
            raise CheckFailed(f"canary still answers {status} {args.recover}s after ml-canary started")
        time.sleep(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="check", required=True)
    p = sub.add_parser("trace")
    p.add_argument("--app", required=True)
    p.add_argument("--jaeger", required=True)
    p.add_argument("--wait", type=float, default=30.0)
    p.set_defaults(run=check_trace)
    p = sub.add_parser("targets")
    p.add_argument("--prometheus", required=True)
    p.add_argument("--expect", type=int, default=0, help="number of targets there must be")
    p.set_defaults(run=check_targets)
    p = sub.add_parser("dashboards")
    p.add_argument("--prometheus", required=True)
    p.add_argument("--provisioning", nargs="*", default=[])
    p.add_argument("files", nargs="+")
    p.set_defaults(run=check_dashboards)
    p = sub.add_parser("outage")
    p.add_argument("--app", required=True)
    p.add_argument("--compose", required=True, help="the docker compose command line, e.g. 'docker compose -f docker/compose.yaml'")
    p.add_argument("--bound", type=float, default=8.0, help="seconds a canary error may take")
    p.add_argument("--recover", type=float, default=60.0, help="seconds canary may take to recover")
    p.add_argument("--unpinned", type=int, default=30, help="requests without x-canary while ml-canary is down")
    p.set_defaults(run=check_outage)
    args = parser.parse_args()
    try:
        args.run(args)
    except CheckFailed as err:
        print(f"FAIL: {err}", file=sys.stderr)
        sys.exit(1)
    except (OSError, urllib.error.URLError, json.JSONDecodeError, subprocess.CalledProcessError) as err:
        print(f"FAIL: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
