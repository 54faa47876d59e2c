#!/usr/bin/env python3
"""Dump every HTTP route the installed MLflow tracking server serves, as JSON.

Used by `crates/catalog/tests/mlflow_coverage.rs` (which runs this script with the
project's `.venv/bin/python`) to check mlgate's route catalog against the real server.

Modes:

  introspect_mlflow_routes.py            dump (default), JSON on stdout:
      {
        "mlflow_version": "3.17.2",
        "routes":  [ {"server": "fastapi"|"flask", "order": n, "methods": [...],
                      "rule": "<as registered>", "pattern": "<mlgate syntax>",
                      "endpoint": "<handler name>"} ... ],
        "mounts": [<FastAPI mount paths>],
        "proto_rpcs": [ {"service", "rpc", "request", "method", "path", "since",
                         "served_by_server", "served_patterns", "handler",
                         "handler_reads": [request_message fields its handler reads],
                         "request_fields", "response_lists": [repeated message fields
                         of the answer]} ... ],
        "proto_fields": {"checked": n, "json_name_mismatch": [...]}
      }

  introspect_mlflow_routes.py --resolve  reads a JSON list of [method, path] probes on
      stdin (path percent-encoded as it goes on the wire) and prints, for each, which
      route the server would dispatch it to: {"server", "pattern", "endpoint",
      "params": {name: decoded value}} or null (404 / 405 / redirect).

mlgate pattern syntax: literal text, `{name}` = one non-empty piece of a segment
(`[^/]+`), `{name...}` = a non-empty run that may span segments (`.+`).

The app examined is exactly what `mlflow server` runs by default in 3.17.x: uvicorn
serving `mlflow.server.fastapi_app:app` (native FastAPI routers first, then the Flask
app `mlflow.server.app` mounted at "/"). No static prefix.
"""

import inspect
import json
import os
import re
import sys
from urllib.parse import unquote

# Routes must be the unprefixed default set; nothing in the environment may change them.
for _var in ("_MLFLOW_STATIC_PREFIX", "MLFLOW_STATIC_PREFIX"):
    os.environ.pop(_var, None)


def _flask_pattern(rule):
    out = []
    pos = 0
    for m in re.finditer(r"<(?:([a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>", rule):
        out.append(rule[pos : m.start()])
        conv, name = m.group(1) or "default", m.group(2)
        if conv == "path":
            out.append("{%s...}" % name)
        elif conv in ("default", "string"):
            out.append("{%s}" % name)
        else:
            raise SystemExit(f"unsupported Flask converter {conv!r} in {rule!r}")
        pos = m.end()
    out.append(rule[pos:])
    return "".join(out)


def _fastapi_pattern(path):
    def repl(m):
        name, conv = m.group(1), m.group(2)
        if conv == "path":
            return "{%s...}" % name
        if conv in (None, "str"):
            return "{%s}" % name
        raise SystemExit(f"unsupported Starlette convertor {conv!r} in {path!r}")

    return re.sub(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_]+))?\}", repl, path)


def _load():
    import mlflow
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import app as fastapi_app

    return mlflow, flask_app, fastapi_app


def _flatten_fastapi(routes):
    """Yield the effective routes of the FastAPI app in dispatch order.

    FastAPI >= 0.16x wraps included routers in `_IncludedRouter`; their effective routes
    (prefix applied) are tried in order, exactly like top-level routes.
    """
    import fastapi.routing as fr

    for r in routes:
        if isinstance(r, fr._IncludedRouter):
            yield from _flatten_fastapi(r.effective_candidates())
        else:
            yield r


def _fastapi_routes(fastapi_app):
    from starlette.routing import Mount

    routes = []
    mounts = []
    low = list(fastapi_app.router._iter_low_priority_routes())
    if low:
        raise SystemExit(f"unexpected low-priority FastAPI routes: {low!r}")
    for order, r in enumerate(_flatten_fastapi(fastapi_app.router.routes)):
        if isinstance(r, Mount):
            mounts.append(r.path)
            continue
        routes.append((order, r))
    return routes, mounts


def dump():
    mlflow, flask_app, fastapi_app = _load()
    from mlflow.server import handlers

    out = {"mlflow_version": mlflow.__version__, "routes": [], "mounts": []}

    fa_routes, mounts = _fastapi_routes(fastapi_app)
    out["mounts"] = mounts
    for order, r in fa_routes:
        methods = sorted(getattr(r, "methods", None) or [])
        original = getattr(r, "original_route", r)
        out["routes"].append(
            {
                "server": "fastapi",
                "order": order,
                "methods": methods,
                "rule": r.path,
                "pattern": _fastapi_pattern(r.path),
                "endpoint": getattr(r, "name", None),
                "kind": type(original).__name__,
            }
        )

    for order, rule in enumerate(flask_app.url_map.iter_rules()):
        methods = set(rule.methods or [])
        # Flask adds OPTIONS (automatic, no view runs) to every rule and HEAD to GET rules.
        if getattr(rule, "provide_automatic_options", True):
            methods.discard("OPTIONS")
        if "GET" in methods:
            methods.discard("HEAD")
        out["routes"].append(
            {
                "server": "flask",
                "order": order,
                "methods": sorted(methods),
                "rule": rule.rule,
                "pattern": _flask_pattern(rule.rule),
                "endpoint": rule.endpoint,
                "kind": "Rule",
            }
        )

    # Protobuf services: every RPC with an HTTP binding, whichever service declares it.
    import importlib
    import pkgutil

    import mlflow.protos as protos_pkg
    from mlflow.protos import databricks_pb2

    services = {}
    for modinfo in pkgutil.iter_modules(protos_pkg.__path__):
        if not modinfo.name.endswith("_pb2"):
            continue
        try:
            mod = importlib.import_module(f"mlflow.protos.{modinfo.name}")
        except Exception:
            continue
        desc = getattr(mod, "DESCRIPTOR", None)
        if desc is None:
            continue
        for sdesc in desc.services_by_name.values():
            services[sdesc.full_name] = (modinfo.name, sdesc)

    served_services = {
        "MlflowService",
        "ModelRegistryService",
        "MlflowArtifactsService",
        "WebhookService",
    }
    rpcs = []
    for full_name, (modname, sdesc) in sorted(services.items()):
        for m in sdesc.methods:
            opts = m.GetOptions()
            if not opts.HasExtension(databricks_pb2.rpc):
                continue
            for ep in opts.Extensions[databricks_pb2.rpc].endpoints:
                rpcs.append(
                    {
                        "service": sdesc.name,
                        "module": modname,
                        "served_by_server": sdesc.name in served_services,
                        "rpc": m.name,
                        "request": m.input_type.name,
                        "method": ep.method,
                        "path": ep.path,
                        "since": f"{ep.since.major}.{ep.since.minor}",
                    }
                )
    handler_names = {}
    handler_reads = {}
    for http_path, handler, methods in handlers.get_endpoints():
        try:
            source = inspect.getsource(inspect.unwrap(handler))
        except (OSError, TypeError):
            source = ""
        reads = sorted(set(re.findall(r"request_message\.(\w+)", source)))
        for meth in methods:
            handler_names[(meth, http_path)] = handler.__name__
            handler_reads[(meth, http_path)] = reads
    for rpc in rpcs:
        if not rpc["served_by_server"]:
            continue
        major = rpc["since"].split(".")[0]
        flask_path = handlers._convert_path_parameter_to_flask_format(rpc["path"])
        rpc["served_paths"] = [
            f"/api/{major}.0{flask_path}",
            f"/ajax-api/{major}.0{flask_path}",
        ]
        rpc["served_patterns"] = [_flask_pattern(p) for p in rpc["served_paths"]]
        rpc["handler"] = handler_names.get((rpc["method"], rpc["served_paths"][0]))
        rpc["handler_reads"] = handler_reads.get((rpc["method"], rpc["served_paths"][0]), [])
    out["proto_rpcs"] = rpcs

    # mlgate canonicalizes lowerCamelCase keys by inserting "_" before each upper-case
    # letter and lower-casing it. Protobuf's json_name is derived the other way round;
    # list every field of the served messages where the two do not agree.
    checked = 0
    mismatches = []
    seen = set()

    def camel_to_snake(s):
        return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), s)

    def walk(mdesc):
        nonlocal checked
        if mdesc.full_name in seen:
            return
        seen.add(mdesc.full_name)
        for f in mdesc.fields:
            checked += 1
            if f.json_name != f.name and camel_to_snake(f.json_name) != f.name:
                mismatches.append(f"{mdesc.full_name}.{f.name} (json_name {f.json_name})")
            if f.name != f.name.lower():
                mismatches.append(f"{mdesc.full_name}.{f.name} (upper-case proto name)")
            if f.message_type is not None:
                walk(f.message_type)

    for full_name, (modname, sdesc) in services.items():
        if sdesc.name not in served_services:
            continue
        for m in sdesc.methods:
            walk(m.input_type)
    out["proto_fields"] = {"checked": checked, "json_name_mismatch": mismatches}

    # Every field path of each served request message, in mlgate's field syntax (`a.b` into a
    # message, `a[].b` into each element of a repeated one), so the catalog test can find the
    # fields that name a resource. Recursion stops at a message already on the path.
    def field_paths(mdesc, prefix="", on_path=()):
        paths = []
        for f in mdesc.fields:
            repeated = f.is_repeated
            path = f"{prefix}{f.name}"
            paths.append({"path": path, "repeated": repeated,
                          "type": f.message_type.full_name if f.message_type else f.type})
            sub = f.message_type
            if sub is not None and sub.full_name not in on_path and not sub.GetOptions().map_entry \
                    and not sub.full_name.startswith("google.protobuf."):
                paths.extend(field_paths(sub, path + ("[]." if repeated else "."),
                                         on_path + (mdesc.full_name,)))
        return paths

    for rpc in rpcs:
        if rpc["served_by_server"]:
            sdesc = services[next(n for n, (_, d) in services.items() if d.name == rpc["service"])][1]
            mdesc = sdesc.methods_by_name[rpc["rpc"]]
            rpc["request_fields"] = field_paths(mdesc.input_type)
            # Top-level repeated messages of the answer: the items a list-like RPC answers.
            rpc["response_lists"] = [
                f.name for f in mdesc.output_type.fields
                if f.is_repeated and f.message_type is not None
                and not f.message_type.GetOptions().map_entry
            ]
    return out


def _fastapi_full_match(route, scope):
    """(effective leaf route, child scope) if `route` fully matches, like FastAPI's router.

    Included routers are matched through `_IncludedRouter._match`, which applies the
    include prefix (matching the bare `original_route` would ignore it).
    """
    import fastapi.routing as fr
    from starlette.routing import Match

    if isinstance(route, fr._IncludedRouter):
        match, child, leaf, ctx = route._match(scope)
        if match != Match.FULL:
            return None
        if isinstance(leaf, fr._IncludedRouter):
            return _fastapi_full_match(leaf, scope)
        return (ctx if ctx is not None else leaf), child
    match, child = route.matches(scope)
    return (route, child) if match == Match.FULL else None


def resolve(probes):
    _, flask_app, fastapi_app = _load()
    from starlette.routing import Mount
    from werkzeug.exceptions import MethodNotAllowed, NotFound
    from werkzeug.routing import RequestRedirect

    adapter = flask_app.url_map.bind("localhost")
    results = []
    for method, raw_path in probes:
        # uvicorn: scope["path"] = percent-decoded raw path (UTF-8).
        path = unquote(raw_path)
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": raw_path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [],
        }
        hit = None
        for r in fastapi_app.router.routes:
            if isinstance(r, Mount):
                break  # the catch-all: everything else reaches the Flask app
            found = _fastapi_full_match(r, scope)
            if found is not None:
                leaf, child = found
                hit = {
                    "server": "fastapi",
                    "pattern": _fastapi_pattern(leaf.path),
                    "endpoint": getattr(leaf, "name", None),
                    "params": {k: str(v) for k, v in child.get("path_params", {}).items()},
                }
                break
        if hit is None:
            try:
                rule, args = adapter.match(path, method=method, return_rule=True)
                hit = {
                    "server": "flask",
                    "pattern": _flask_pattern(rule.rule),
                    "endpoint": rule.endpoint,
                    "params": {k: str(v) for k, v in args.items()},
                }
            except (NotFound, MethodNotAllowed, RequestRedirect):
                hit = None
        results.append(hit)
    return results


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--resolve":
        probes = json.load(sys.stdin)
        json.dump(resolve(probes), sys.stdout)
    else:
        json.dump(dump(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
