"""Cluster manifests are valid and runnable; pipelines log to a real MLflow server."""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RAY_PIN = "2.60.0"
CRDS = ROOT.parent / "shared" / "reference" / "kuberay"
MANIFESTS = sorted((ROOT / "infra" / "kuberay").glob("ray*.yaml"))


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _check_cluster_spec(spec: dict, where: str) -> None:
    assert spec["rayVersion"] == RAY_PIN, where
    assert spec.get("authOptions", {}).get("mode") == "token", f"{where}: token auth must be on"
    head = spec["headGroupSpec"]["template"]["spec"]["containers"]
    assert head and head[0]["image"], where
    for group in spec.get("workerGroupSpecs", []):
        assert group["groupName"] and group["template"]["spec"]["containers"][0]["image"], where
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], where


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kuberay_manifest_has_the_fields_kuberay_requires(path):
    (doc,) = _docs(path)
    assert doc["apiVersion"] == "ray.io/v1" and doc["metadata"]["name"]
    if doc["kind"] == "RayCluster":
        _check_cluster_spec(doc["spec"], path.name)
    else:
        assert doc["kind"] == "RayJob"
        entrypoint = doc["spec"]["entrypoint"].split()
        assert entrypoint[0] == "python" and (ROOT / entrypoint[1]).is_file(), entrypoint
        assert doc["spec"]["shutdownAfterJobFinishes"] is True
        _check_cluster_spec(doc["spec"]["rayClusterSpec"], path.name)


def test_docker_image_and_launcher_pin_the_same_ray():
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    assert f"rayproject/ray:{RAY_PIN}-py311-gpu" in dockerfile
    assert f"ray[default,data,train,tune]=={RAY_PIN}" in (ROOT / "pyproject.toml").read_text()
    launcher = yaml.safe_load((ROOT / "infra" / "cluster.yaml").read_text())
    assert launcher["head_node_type"] in launcher["available_node_types"]
    mlflow_docs = _docs(ROOT / "infra" / "mlflow" / "mlflow-server.yaml")
    assert {d["kind"] for d in mlflow_docs} == {"Deployment", "Service", "NetworkPolicy"}


@pytest.fixture(scope="module")
def crd_schemas() -> dict[str, dict]:
    """KubeRay 1.7's published CRD schemas (v1), by kind."""
    if not CRDS.is_dir():
        pytest.skip(f"{CRDS} is absent (the KubeRay CRDs live in ../shared/reference)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schemas = {}
    for path in CRDS.glob("ray.io_*.yaml"):
        for doc in yaml.load_all(path.read_text(), Loader=loader):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                (version,) = [v for v in doc["spec"]["versions"] if v["name"] == "v1"]
                schemas[doc["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_against_the_kuberay_crd(path, crd_schemas):
    import jsonschema

    (doc,) = _docs(path)
    jsonschema.Draft7Validator(crd_schemas[doc["kind"]]).validate(doc)


def test_crd_validation_catches_a_wrong_field(crd_schemas):
    import jsonschema

    (doc,) = _docs(ROOT / "infra" / "kuberay" / "rayjob-train-occlip.yaml")
    doc["spec"]["rayClusterSpec"]["authOptions"]["mode"] = "password"
    with pytest.raises(jsonschema.ValidationError, match="password"):
        jsonschema.Draft7Validator(crd_schemas["RayJob"]).validate(doc)


def _pod_specs(doc: dict) -> list[dict]:
    """The head's and every worker group's pod template spec."""
    spec = doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]
    groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
    return [group["template"] for group in groups]


def _declared_claims() -> set[str]:
    return {
        d["metadata"]["name"]
        for path in (ROOT / "infra").rglob("*.yaml")
        for d in _docs(path)
        if isinstance(d, dict) and d.get("kind") == "PersistentVolumeClaim"
    }


def _mounted_paths(template: dict) -> set[str]:
    """Mount paths backed by a declared PVC, in every container of a pod template."""
    claims = _declared_claims()
    volumes = {
        v["name"]
        for v in template["spec"].get("volumes", [])
        if v.get("persistentVolumeClaim", {}).get("claimName") in claims
    }
    per_container = [
        {m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] in volumes}
        for c in template["spec"]["containers"]
    ]
    return set.intersection(*per_container) if per_container else set()


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_path_is_a_uri_or_on_a_mounted_shared_volume(path):
    """A path on one node's local disk is invisible to the others and gone with the pod."""
    (doc,) = _docs(path)
    templates = _pod_specs(doc)
    shared = set.intersection(*[_mounted_paths(t) for t in templates])
    assert shared, f"{path.name}: no PVC-backed volume mounted on the head and every worker"
    if doc["kind"] != "RayJob":
        return
    script, *overrides = shlex.split(doc["spec"]["entrypoint"])[1:]
    assert (ROOT / script).is_file(), script
    values = dict(o.split("=", 1) for o in overrides)
    assert "out" in values, f"{path.name}: out= must be set (the default is relative)"
    for key, value in values.items():
        if "/" not in value:
            continue  # not a path
        ok = "://" in value or any(value.startswith(m.rstrip("/") + "/") for m in shared)
        assert ok, f"{path.name}: {key}={value} is neither a URI nor under {sorted(shared)}"


def test_ray_pods_reach_the_authenticated_mlflow_server():
    """Host names in MLFLOW_TRACKING_URI are in --allowed-hosts (else MLflow answers 403),
    the server runs the basic-auth app, credentials come from a Secret that exists, and the
    NetworkPolicy admits exactly the pods that carry the client label."""
    mlflow_docs = {d["kind"]: d for d in _docs(ROOT / "infra" / "mlflow" / "mlflow-server.yaml")}
    server = mlflow_docs["Deployment"]["spec"]["template"]
    (container,) = server["spec"]["containers"]
    command = container["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    allowed = set(command[command.index("--allowed-hosts") + 1].split(","))
    policy = mlflow_docs["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= server["metadata"]["labels"].items()
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    client_label = source["podSelector"]["matchLabels"]
    secrets = {
        d["metadata"]["name"]: d["stringData"]
        for d in _docs(ROOT / "infra" / "mlflow" / "mlflow-secrets.example.yaml")
    }
    for ref in [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]:
        assert ref["key"] in secrets[ref["name"]], ref
    for path in MANIFESTS:
        (doc,) = _docs(path)
        for template in _pod_specs(doc):
            assert client_label.items() <= template["metadata"]["labels"].items(), path.name
            for c in template["spec"]["containers"]:
                env = {e["name"]: e for e in c["env"]}
                host = urlparse(env["MLFLOW_TRACKING_URI"]["value"]).netloc
                assert host in allowed, f"{path.name}: {host} not in --allowed-hosts"
                for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                    ref = env[key]["valueFrom"]["secretKeyRef"]
                    assert ref["key"] in secrets[ref["name"]], (path.name, key)
