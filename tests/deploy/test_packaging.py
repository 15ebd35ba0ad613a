"""The Dockerfile and the Kubernetes manifests, checked without running them.

Run through tests/deploy/run.sh. No container engine or cluster is needed:
linters and schemas catch typos, and the rest checks that the packaging
agrees with the binary it ships (every variable it sets is one the binary
reads; the drain arithmetic holds; probes ask the service the binary
registers).
"""

import os
import pathlib
import re
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
BIN = os.environ.get("SSLVPN_BIN", str(ROOT / "target" / "debug" / "sslvpn-gateway"))
# The oldest Kubernetes the manifests support (preStop `sleep` needs 1.30).
KUBERNETES_VERSION = "1.30.0"


def manifests():
    """Every resource document in deploy/kubernetes (the kustomization aside)."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def resource(kind, name=None):
    for _, doc in manifests():
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name):
            return doc
    raise AssertionError(f"no {kind} {name or ''}")


def container():
    pod = resource("Deployment")["spec"]["template"]["spec"]
    (gateway,) = pod["containers"]
    return pod, gateway


def env(gateway):
    return {e["name"]: e for e in gateway["env"]}


def seconds(text):
    m = re.fullmatch(r"(\d+)s", text)
    assert m, f"durations in the manifests are whole seconds: {text!r}"
    return int(m.group(1))


def test_hadolint_finds_nothing():
    run = subprocess.run(["hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_yaml_is_clean():
    config = "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}"
    run = subprocess.run(
        ["yamllint", "--strict", "-d", config, str(K8S)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_manifest_validates_strictly():
    files = sorted(str(p) for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    run = subprocess.run(
        ["kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, *files],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ERROR" not in run.stdout + run.stderr


def test_the_kustomization_lists_every_resource_but_the_secret():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}
    assert kustomization["images"][0]["name"] == container()[1]["image"]


def test_every_variable_set_is_one_the_binary_reads():
    help_text = subprocess.run(
        [BIN, "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    known = set(re.findall(r"\[env: (\w+)=", help_text))
    assert "SSLVPN_LISTEN" in known, help_text
    # Read by the credential chain and the logger, not by clap.
    known |= {"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "RUST_LOG"}
    _, gateway = container()
    unknown = set(env(gateway)) - known
    assert not unknown, f"the binary reads no {sorted(unknown)}"


def test_credentials_come_from_the_secret():
    secret = resource("Secret", "sslvpn-gateway-credentials")
    _, gateway = container()
    variables = env(gateway)
    for key in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        ref = variables[key]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
        assert "value" not in variables[key], "never a literal credential"


def test_the_exposed_listener_has_tls_and_authentication():
    # Off loopback the gateway refuses to start without both (security.rs).
    pod, gateway = container()
    variables = env(gateway)
    assert "SSLVPN_INSECURE" not in variables
    assert {"SSLVPN_TLS_CERT", "SSLVPN_TLS_KEY"} <= set(variables)
    assert {"SSLVPN_AUTH_TOKENS", "SSLVPN_TLS_CLIENT_CA"} & set(variables)


def test_every_file_the_gateway_reads_is_a_key_of_a_mounted_secret():
    pod, gateway = container()
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in gateway["volumeMounts"]}
    for name in ("SSLVPN_TLS_CERT", "SSLVPN_TLS_KEY", "SSLVPN_AUTH_TOKENS", "SSLVPN_TLS_CLIENT_CA", "SSLVPN_POLICY"):
        if name not in env(gateway):
            continue
        path = pathlib.PurePosixPath(env(gateway)[name]["value"])
        volume = volumes[mounts[str(path.parent)]]
        secret = resource("Secret", volume["secret"]["secretName"])
        assert path.name in secret["stringData"], f"{name}: {path.name} not in the Secret"
        assert all(m.get("readOnly") for m in gateway["volumeMounts"])


def test_termination_covers_the_prestop_wait_and_the_drain():
    pod, gateway = container()
    variables = env(gateway)
    pre_stop = gateway["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = seconds(variables["SSLVPN_SHUTDOWN_GRACE"]["value"])
    longest_call = seconds(variables["SSLVPN_REQUEST_TIMEOUT"]["value"])
    assert drain >= longest_call, "a call in flight may finish during the drain"
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


def test_probes_and_scraping_use_the_admin_listener():
    pod, gateway = container()
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    variables = env(gateway)
    assert variables["SSLVPN_LISTEN"]["value"] == f"0.0.0.0:{ports['grpc']}"
    # The admin listener must face the pod IP for the kubelet and Prometheus.
    assert variables["SSLVPN_ADMIN_LISTEN"]["value"] == f"0.0.0.0:{ports['admin']}"
    ready = gateway["readinessProbe"]["httpGet"]
    live = gateway["livenessProbe"]["httpGet"]
    assert (ready["path"], ready["port"]) == ("/readyz", "admin")
    assert (live["path"], live["port"]) == ("/healthz", "admin")
    annotations = resource("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(ports["admin"])
    assert annotations["prometheus.io/path"] == "/metrics"
    # The paths are the ones the admin listener serves.
    admin = (ROOT / "src" / "server" / "admin.rs").read_text()
    for path in ("/readyz", "/healthz", "/metrics"):
        assert f'"{path}"' in admin, path


def test_the_pod_runs_as_the_images_non_root_user():
    pod, gateway = container()
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert user, "the image's USER is numeric (runAsNonRoot can check it)"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user[-1][0]
    assert gateway["securityContext"]["readOnlyRootFilesystem"] is True
    assert gateway["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_budget_and_the_autoscaler_leave_a_replica_serving():
    pdb = resource("PodDisruptionBudget")
    hpa = resource("HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] >= 2
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    deployment = resource("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (pdb["spec"]["selector"]["matchLabels"], resource("Service")["spec"]["selector"]):
        assert selector.items() <= labels.items()


@pytest.mark.parametrize("path", ["Cargo.toml", "Cargo.lock", "build.rs", "proto", "src"])
def test_the_build_stage_copies_what_cargo_needs(path):
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (?!--from)(.+?) \S+$", dockerfile, re.M)
    sources = {s for line in copied for s in line.split()}
    assert path in sources, f"the build stage does not copy {path}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert path not in ignored
