#!/usr/bin/env python3
"""The layering rule of the workspace, checked from `cargo metadata`.

Fronts (every crate that is neither a library below the service nor the service itself:
the `agora` binary, the HTTP API, and the coming Flight SQL, PostgreSQL protocol, portal
and federation crates) reach data only through `agora-service`: they must not depend on the
query layer, the lake, the metadata store, the hub secret or the engine. Libraries must not
depend on the service or on a front, and only the service may build query sessions
(`agora-query`). A new crate is a front unless it is added to LIBRARIES below.

Run: python3 ci/dependency-rule.py  (exit status 1 and one line per violation if broken)
"""

import json
import subprocess
import sys

SERVICE = "agora-service"
# Below the service: they may depend on each other (no cycles: cargo refuses them).
LIBRARIES = {
    "agora-core",
    "agora-privacy",
    "agora-lake",
    "agora-govern",
    "agora-query",
    "agora-quality",
    "agora-ingest",
    "agora-fhir",
    "agora-synth",
    "agora-cdm",
    "agora-audit",
}
# What a front may not depend on directly (normal or build dependencies).
FORBIDDEN_FOR_FRONTS = {
    "agora-query": "sessions are built only by the query service",
    "agora-lake": "data files are read only through the query service",
    "agora-govern": "the metadata store is reached through agora_service::Hub::governance",
    "agora-privacy": "the hub secret stays inside the service",
    "datafusion": "the engine is the query service's business",
}
# Tools allowed one forbidden dependency, with the reason.
EXEMPT = {
    ("agora-bench", "datafusion"): "the plain-DataFusion peer of the benchmark comparison",
}
# Who may depend on the query layer at all.
QUERY_LAYER = "agora-query"


def main() -> int:
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = {p["name"]: p for p in meta["packages"]}
    violations = []
    for name, package in sorted(members.items()):
        deps = {
            d["name"]
            for d in package["dependencies"]
            if d.get("kind") in (None, "build")
        }
        if name == SERVICE:
            continue
        if name in LIBRARIES:
            for d in sorted(deps):
                if d == SERVICE or (d in members and d not in LIBRARIES):
                    violations.append(f"library {name} depends on {d}, which sits above it")
                if d == QUERY_LAYER and name != SERVICE:
                    violations.append(
                        f"library {name} depends on {QUERY_LAYER}: only {SERVICE} builds sessions"
                    )
            continue
        # A front.
        for d in sorted(deps):
            if d in FORBIDDEN_FOR_FRONTS and (name, d) not in EXEMPT:
                violations.append(f"front {name} depends on {d}: {FORBIDDEN_FOR_FRONTS[d]}")
    fronts = sorted(n for n in members if n not in LIBRARIES and n != SERVICE)
    if SERVICE not in members:
        violations.append(f"the workspace has no {SERVICE}")
    for v in violations:
        print(f"dependency rule: {v}", file=sys.stderr)
    if not violations:
        print(f"dependency rule holds: fronts {', '.join(fronts)} reach data through {SERVICE}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
