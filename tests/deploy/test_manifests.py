"""Deployment artefacts: Kubernetes manifests, deploy/example.env and docker-compose.yml are valid and consistent."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
EXAMPLE_ENV = ROOT / "deploy" / "example.env"
COMPOSE = ROOT / "docker-compose.yml"
K8S_VERSION = "1.33.0"  # a recent release whose schemas kubernetes-validate bundles (offline)
SETTING_NAMES = {f"MATCH_{name.upper()}" for name in Settings.model_fields}
MATCH_NAME = re.compile(r"\bMATCH_[A-Z0-9_]+\b")
MANIFEST_FILES = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def _all_documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFEST_FILES for doc in _documents(path)]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _all_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in _all_documents()
        if d["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
    ]


def _container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in spec["containers"] if c["name"] == name)


def _env_names(obj: Any) -> set[str]:
    """Every `MATCH_*` variable name a manifest sets: env entries and ConfigMap/Secret keys."""
    if obj.get("kind") in ("ConfigMap", "Secret"):
        return {k for section in ("data", "stringData") for k in obj.get(section, {}) if k.startswith("MATCH_")}
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "env" in node and isinstance(node["env"], list):
                names.update(e["name"] for e in node["env"] if e["name"].startswith("MATCH_"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(obj)
    return names


# --- Kubernetes ------------------------------------------------------------------------------------------------------


def test_the_expected_manifests_exist() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in _all_documents()}
    assert {
        ("Namespace", "jiedui"),
        ("Secret", "jiedui-secrets"),
        ("ConfigMap", "jiedui-config"),
        ("Job", "jiedui-migrate"),
        ("Deployment", "jiedui-api"),
        ("Service", "jiedui-api"),
        ("Deployment", "jiedui-worker"),
    } <= kinds


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path: Path) -> None:
    docs = _documents(path)
    assert docs, f"{path.name} holds no document"
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # strict: unknown fields are errors too


def test_strict_validation_catches_a_misspelt_field() -> None:
    """Guards the test above: a typo in a probe must not pass as valid."""
    doc = _one("Deployment", "jiedui-api")
    _container(doc["spec"]["template"]["spec"], "api")["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_everything_but_the_namespace_lives_in_it() -> None:
    for doc in _all_documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "jiedui", f"{doc['kind']}/{doc['metadata']['name']}"


def test_kustomization_lists_every_manifest_but_the_migrate_job() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in MANIFEST_FILES} - {"migrate-job.yaml"}


def test_api_probes_readiness_on_readyz_and_liveness_on_healthz() -> None:
    spec = _one("Deployment", "jiedui-api")["spec"]["template"]["spec"]
    api = _container(spec, "api")
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = api[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == 8000
    env = {e["name"]: e.get("value") for e in api["env"]}
    assert env["MATCH_HOST"] == "0.0.0.0"
    assert spec["terminationGracePeriodSeconds"] > Settings.model_fields["shutdown_grace_s"].default


def test_api_service_targets_the_api_port() -> None:
    service = _one("Service", "jiedui-api")
    deployment = _one("Deployment", "jiedui-api")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    api_ports = _container(deployment["spec"]["template"]["spec"], "api")["ports"]
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in api_ports} | {8000}


@pytest.mark.parametrize(
    "kind,name", [("Deployment", "jiedui-api"), ("Deployment", "jiedui-worker"), ("Job", "jiedui-migrate")]
)
def test_containers_run_as_non_root(kind: str, name: str) -> None:
    spec = _one(kind, name)["spec"]["template"]["spec"]
    pod = spec.get("securityContext", {})
    for container in spec["containers"]:
        ctx = {**pod, **container.get("securityContext", {})}
        assert ctx.get("runAsNonRoot") is True, container["name"]
        assert ctx.get("runAsUser", 0) != 0, container["name"]
        assert ctx.get("allowPrivilegeEscalation") is False, container["name"]
        assert "ALL" in ctx.get("capabilities", {}).get("drop", []), container["name"]
        assert container["resources"]["requests"] and container["resources"]["limits"], container["name"]


def test_worker_runs_the_worker_command_with_a_long_grace_period() -> None:
    deployment = _one("Deployment", "jiedui-worker")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert spec["terminationGracePeriodSeconds"] >= 90  # jobs in hand finish before SIGKILL
    command = _container(spec, "worker")["command"]
    assert command[:4] == ["python", "-m", "service.cli", "worker"]
    assert command[command.index("--concurrency") + 1] == "2"


def test_migrate_job_runs_migrations_once() -> None:
    job = _one("Job", "jiedui-migrate")
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert _container(spec, "migrate")["command"] == ["python", "-m", "service.cli", "migrate"]


def test_config_separates_workers_from_the_api() -> None:
    data = _one("ConfigMap", "jiedui-config")["data"]
    assert data["MATCH_INLINE_RUNS"] == "false"
    assert data["MATCH_IN_PROCESS_WORKER"] == "false"
    secret = _one("Secret", "jiedui-secrets")["stringData"]
    assert {"MATCH_DATABASE_URL", "MATCH_JWT_SECRET"} <= secret.keys()
    assert not {"MATCH_DATABASE_URL", "MATCH_JWT_SECRET"} & data.keys()  # secrets never in the ConfigMap


def test_every_pod_reads_the_config_and_the_secret() -> None:
    for where, spec in _pod_specs():
        for container in spec["containers"]:
            sources = {next(iter(s.values()))["name"] for s in container.get("envFrom", [])}
            assert sources == {"jiedui-config", "jiedui-secrets"}, where


def test_manifest_settings_exist() -> None:
    for doc in _all_documents():
        unknown = _env_names(doc) - SETTING_NAMES
        assert not unknown, f"{doc['kind']}/{doc['metadata']['name']} sets unknown settings {sorted(unknown)}"


def test_manifest_settings_parse_as_settings() -> None:
    """The ConfigMap's values are acceptable to Settings (types, bounds, patterns)."""
    data = _one("ConfigMap", "jiedui-config")["data"]
    fields = {key.removeprefix("MATCH_").lower(): value for key, value in data.items()}
    settings = Settings(_env_file=None, **fields)  # type: ignore[call-arg]
    assert settings.inline_runs is False and settings.in_process_worker is False


# --- example.env -----------------------------------------------------------------------------------------------------


SETTING_LINE = re.compile(r"^(?:#\s*)?(MATCH_[A-Z0-9_]+)=")


def _example_env_names() -> set[str]:
    """Names on a setting line of example.env, including commented-out ones (`# MATCH_X=`)."""
    lines = EXAMPLE_ENV.read_text(encoding="utf-8").splitlines()
    return {m.group(1) for line in lines if (m := SETTING_LINE.match(line))}


def test_example_env_names_exist() -> None:
    unknown = set(MATCH_NAME.findall(EXAMPLE_ENV.read_text(encoding="utf-8"))) - SETTING_NAMES
    assert not unknown, f"example.env mentions unknown settings {sorted(unknown)}"


def test_example_env_covers_every_setting_with_a_comment() -> None:
    missing = SETTING_NAMES - _example_env_names()
    assert not missing, f"settings missing from deploy/example.env: {sorted(missing)}"
    lines = EXAMPLE_ENV.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if SETTING_LINE.match(line):
            above = next((x for x in reversed(lines[:i]) if not SETTING_LINE.match(x)), "")
            assert above.startswith("# "), f"line {i + 1} ({line.split('=')[0]}): no explaining comment above it"


def test_example_env_values_parse_as_settings() -> None:
    text = EXAMPLE_ENV.read_text(encoding="utf-8")
    values = dict(re.findall(r"^MATCH_([A-Z0-9_]+)=(.*)$", text, re.M))
    Settings(_env_file=None, **{k.lower(): v for k, v in values.items()})  # type: ignore[call-arg]


# --- docker-compose.yml ----------------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_db_has_a_healthcheck() -> None:
    db = _compose()["services"]["db"]
    test = db["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))


def test_compose_migrate_is_a_one_shot_that_api_and_worker_wait_for() -> None:
    services = _compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"][-1] == "migrate"
    assert migrate.get("restart", "no") == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_compose_settings_exist() -> None:
    for name, service in _compose()["services"].items():
        env = service.get("environment") or {}
        unknown = {key for key in env if key.startswith("MATCH_")} - SETTING_NAMES
        assert not unknown, f"compose service {name} sets unknown settings {sorted(unknown)}"


def test_compose_config_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose binary not installed: `docker-compose config -q` not run")
    env = {**os.environ, "MATCH_JWT_SECRET": "compose-config-check-secret-0123456789"}
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
