#!/usr/bin/env python3
"""Checks the Grafana dashboard and the Prometheus rules against the code.

Every PromQL query of deploy/grafana/*.json must parse (promtool checks it
as a recording rule, Grafana's variables replaced by plain values), and
every sslvpn_* metric that the dashboard or deploy/prometheus/rules.yml
names must be one that the code registers. Each feature registers its own
families (src/**/*.rs), counters without their `_total`, which the encoder
appends.
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

root = pathlib.Path(__file__).resolve().parent.parent
defined = {
    name
    for source in sorted((root / "src").rglob("*.rs"))
    for name in re.findall(r'"(sslvpn_[a-z_]+)"', source.read_text())
}
suffixes = ("_bucket", "_count", "_sum", "_total")


def base(name):
    for s in suffixes:
        if name.endswith(s) and name[: -len(s)] in defined:
            return name[: -len(s)]
    return name


def grafana_to_promql(expr):
    expr = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
    return re.sub(r"\$[a-z_]+", ".*", expr)


exprs = []
for dashboard in sorted((root / "deploy/grafana").glob("*.json")):
    for panel in json.loads(dashboard.read_text())["panels"]:
        for target in panel.get("targets", []):
            exprs.append((f"{dashboard.name}: {panel['title']}", target["expr"]))
rules_text = (root / "deploy/prometheus/rules.yml").read_text()

problems = []
used = {m for _, e in exprs for m in re.findall(r"sslvpn_[a-z_]+", e)}
used |= set(re.findall(r"sslvpn_[a-z_]+", rules_text))
for name in sorted(used):
    if base(name) not in defined:
        problems.append(f"{name} is not registered anywhere in src/")

with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (_, e) in enumerate(exprs):
        f.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(grafana_to_promql(e))}\n")
result = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
if result.returncode != 0:
    problems.append("a dashboard query does not parse:\n" + result.stdout + result.stderr)

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{len(exprs)} dashboard queries parse; {len(used)} metric names, all defined")
