"""The deployment files agree with the code: Dockerfile, docker-compose.yml, deploy/*.yaml.

Every process command is a real ``dialer`` subcommand with options it accepts,
every environment variable is a ``Settings`` field, the configuration the
files give builds a valid ``Settings``, and the Kubernetes objects reference
each other by the right names. ``docker compose config`` runs only where the
Compose plugin is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from benchmarks.gitinfo import tracked_paths
from dialer.core.settings import Settings
from tests.support import shellout

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
SETTINGS_PREFIXES = ("DIALER_", "EXOTEL_", "STREAMER_", "REDIS_")
DIALER_SERVICES = {"worker", "beat", "receiver", "streamer", "flower", "sandbox"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
DATA_DIR = "/data"


# ------------------------------------------------------------------ loading


@cache
def cli() -> click.Group:
    from dialer.cli import commands, up
    from dialer.cli.main import cli as group

    # register() only fills group.commands (a dict): calling it again is harmless,
    # but skip it when the commands are already there.
    if "status" not in group.commands:
        commands.register(group)
    if "up" not in group.commands:
        up.register(group)
    return group


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@cache
def k8s_docs() -> tuple[tuple[str, dict[str, Any]], ...]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return tuple(docs)


def objects(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in k8s_docs() if d.get("kind") == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in objects(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def workloads() -> list[dict[str, Any]]:
    return [d for _, d in k8s_docs() if d.get("kind") in WORKLOAD_KINDS]


def dialer_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container that runs the dialer image."""
    for w in workloads():
        for c in w["spec"]["template"]["spec"]["containers"]:
            if not c["image"].startswith("redis:"):
                yield w, c


def config_map_data() -> dict[str, str]:
    return one("ConfigMap", "dialer-config")["data"]


def secret_data() -> dict[str, str]:
    return one("Secret", "dialer-secrets")["stringData"]


_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: object) -> str:
    """Compose's ${VAR:-default} with an empty environment; ${VAR:?...} gets a dummy."""

    def sub(m: re.Match[str]) -> str:
        op, arg = m.group(2), m.group(3) or ""
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return f"test-{m.group(1).lower()}"
        return ""

    return _INTERPOLATION.sub(sub, str(value))


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: interpolate(v) for k, v in env.items()}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def assert_dialer_command(argv: list[str], where: str) -> None:
    assert argv and all(isinstance(a, str) for a in argv), f"{where}: {argv!r}"
    name, *rest = argv
    command = cli().commands.get(name)
    assert command is not None, f"{where}: {name!r} is not a dialer subcommand"
    try:  # parses the options exactly as the CLI will, without running anything
        command.make_context(f"dialer {name}", list(rest))
    except click.UsageError as exc:
        pytest.fail(f"{where}: dialer {' '.join(argv)}: {exc}")


def assert_settings_names(names: set[str], where: str) -> None:
    ours = {n for n in names if n.startswith(SETTINGS_PREFIXES)}
    unknown = ours - set(Settings.model_fields)
    assert not unknown, f"{where}: not fields of dialer.core.settings.Settings: {sorted(unknown)}"


# ------------------------------------------------------------------ image


def test_dockerfile_one_non_root_image_for_every_process() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}\s*$", text, re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert 'ENTRYPOINT ["dialer"]' in text
    assert "PYTHONUNBUFFERED=1" in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M), "the image must not run as root"
    assert "[dev]" not in text, "no dev extras in the image"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", ".dialer", "tests"):
        assert entry in ignored, f".dockerignore should exclude {entry}"


# ------------------------------------------------------------------ compose


def test_compose_services() -> None:
    services = compose()["services"]
    assert {"redis", *DIALER_SERVICES} <= set(services)
    assert services["sandbox"]["profiles"] == ["sandbox"]
    for name in DIALER_SERVICES - {"sandbox"}:
        assert "profiles" not in services[name], f"{name} must start by default"


def test_compose_redis_is_persistent_and_health_checked() -> None:
    redis = compose()["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose()["volumes"], "a named volume"
    assert "ping" in " ".join(redis["healthcheck"]["test"])


def test_compose_redis_needs_a_password_and_is_not_published() -> None:
    redis = compose()["services"]["redis"]
    cmd = redis["command"]
    password = cmd[cmd.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?"), "compose must refuse to start without it"
    assert "ports" not in redis, "Redis is reachable only on the compose network"
    # the health check authenticates, and an error reply (NOAUTH) fails it
    assert redis["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")
    assert "grep -q PONG" in " ".join(redis["healthcheck"]["test"])
    url = compose()["x-dialer-env"]["REDIS_URL"]
    assert url.startswith("redis://:${REDIS_PASSWORD:?") and url.endswith("@redis:6379/0")


def test_flower_is_never_published_beyond_the_host() -> None:
    # Flower has no login of its own and shows every task: loopback (compose) or
    # inside the cluster (a ClusterIP Service, reached by port-forward) only.
    ports = compose()["services"]["flower"]["ports"]
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports), ports
    assert one("Service", "flower")["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert not objects("Ingress"), "nothing is exposed by an Ingress in these manifests"


def test_env_files_are_never_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored and ".env.*" in ignored
    tracked = tracked_paths(ROOT)  # read from .git: the suite does not run git
    if tracked is not None:  # not a git checkout (an sdist): nothing to check
        env_files = {p for p in tracked if p == ".env" or p.startswith(".env.")}
        assert env_files <= {".env.example"}, env_files


def test_compose_commands_are_dialer_subcommands() -> None:
    services = compose()["services"]
    for name in DIALER_SERVICES:
        assert_dialer_command(services[name]["command"], f"docker-compose.yml {name}")
    assert services["worker"]["command"][0] == "worker"
    assert services["beat"]["command"] == ["beat"]


def test_compose_worker_scales_and_beat_is_single() -> None:
    services = compose()["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    for name in DIALER_SERVICES:
        assert "container_name" not in services[name]


def test_compose_servers_listen_on_all_interfaces() -> None:
    services = compose()["services"]
    for name in ("receiver", "streamer", "sandbox"):
        cmd = services[name]["command"]
        assert cmd[cmd.index("--host") + 1] == "0.0.0.0", name
    assert service_env(services["flower"])["DIALER_HOST"] == "0.0.0.0"


def test_compose_depends_on_healthy_redis() -> None:
    services = compose()["services"]
    for name in DIALER_SERVICES - {"sandbox"}:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_compose_health_checks() -> None:
    services = compose()["services"]
    expected = {
        "receiver": ":8080/readyz",
        "streamer": ":8081/readyz",
        "sandbox": ":8082/_sandbox/healthz",
        "flower": ":5555/healthcheck",
    }
    for name, url in expected.items():
        test = " ".join(services[name]["healthcheck"]["test"])
        assert url in test, f"{name} healthcheck: {test}"
        assert "urllib" in test


def test_compose_env_names_are_settings_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    anchor = compose()["x-dialer-env"]
    for name in (
        "DIALER_SECRET",
        "DIALER_API_KEY",
        "EXOTEL_API_TOKEN",
        "DIALER_PUBLIC_URL",
        "STREAMER_PUBLIC_URL",
    ):
        assert str(anchor[name]).startswith(f"${{{name}:"), f"{name} comes from the host"
    assert_settings_names(set(anchor), "x-dialer-env")
    for name in DIALER_SERVICES:
        env = service_env(services[name])
        assert_settings_names(set(env), f"docker-compose.yml {name}")
        s = settings_from(env, monkeypatch)  # the defaults must make a valid Settings
        assert s.REDIS_URL == "redis://:test-redis_password@redis:6379/0"
        assert s.DIALER_API_KEY.get_secret_value(), "an empty API key would open the API"


@pytest.mark.skipif(
    "docker" not in shellout.opted_in() or shutil.which("docker") is None,
    reason="runs docker only when asked: DIALER_TEST_TOOLS=docker (make setup does not install it)",
)
def test_docker_compose_config() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "DIALER_SECRET": "test-secret",
            "DIALER_API_KEY": "test-key",
            "REDIS_PASSWORD": "test-redis-password",
        }
        return subprocess.run(
            ["docker", "compose", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    if run("version").returncode != 0:
        pytest.skip("docker compose is not available")
    result = run("-f", str(COMPOSE), "--profile", "sandbox", "config", "-q")
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ kubernetes


def test_every_manifest_parses_and_is_namespaced() -> None:
    names = {p.name for p in DEPLOY.glob("*.yaml")}
    assert {
        "namespace.yaml",
        "configmap.yaml",
        "secret.example.yaml",
        "redis.yaml",
        "worker.yaml",
        "beat.yaml",
        "receiver.yaml",
        "streamer.yaml",
        "flower.yaml",
        "keda-scaledobject.yaml",
        "networkpolicy.yaml",
    } <= names
    assert (DEPLOY / "README.md").is_file()
    for file, doc in k8s_docs():
        assert {"apiVersion", "kind", "metadata"} <= set(doc), file
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "dialer", f"{file} {doc['kind']}"


def test_k8s_args_are_dialer_subcommands() -> None:
    seen = set()
    for w, c in dialer_containers():
        where = f"{w['kind']} {w['metadata']['name']}"
        assert "command" not in c, f"{where}: use args, the image's entrypoint is dialer"
        assert_dialer_command(c["args"], where)
        seen.add(c["args"][0])
    assert {"worker", "beat", "receiver", "streamer", "flower"} <= seen


def test_k8s_one_image_env_from_config_and_secret() -> None:
    images = set()
    for w, c in dialer_containers():
        images.add(c["image"])
        refs = {next(iter(ref.values()))["name"] for ref in c["envFrom"]}
        assert refs == {"dialer-config", "dialer-secrets"}, w["metadata"]["name"]
        assert_settings_names({e["name"] for e in c.get("env", [])}, w["metadata"]["name"])
    assert len(images) == 1, f"one image for every process, got {images}"


def test_k8s_configuration_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config, secret = config_map_data(), secret_data()
    # envFrom hands every key to Settings: all of them must be fields.
    unknown = (set(config) | set(secret)) - set(Settings.model_fields)
    assert not unknown, f"not fields of Settings: {sorted(unknown)}"
    assert_settings_names(set(config) | set(secret), "ConfigMap/Secret")
    secrets = {"DIALER_SECRET", "DIALER_API_KEY", "EXOTEL_API_TOKEN", "REDIS_URL"}
    assert secrets <= set(secret)
    assert not secrets & set(config), "REDIS_URL carries Redis's password: Secret only"
    s = settings_from({**config, **secret}, monkeypatch)
    assert s.DIALER_HOST == "0.0.0.0"
    assert str(s.DIALER_DATA_DIR) == DATA_DIR
    assert s.REDIS_URL and s.REDIS_URL.startswith("redis://:REPLACE-ME")
    assert s.REDIS_URL.endswith("@redis:6379/0")


def test_k8s_pods_are_hardened() -> None:
    for w in workloads():
        name = w["metadata"]["name"]
        pod = w["spec"]["template"]["spec"]
        # Service links would inject STREAMER_PORT=tcp://... and FLOWER_PORT=tcp://...
        assert pod.get("enableServiceLinks") is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "resources" in c and "requests" in c["resources"], name
    for w, c in dialer_containers():
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in w["spec"]["template"]["spec"]["volumes"]}
        assert DATA_DIR in mounts, f"{w['metadata']['name']}: DIALER_DATA_DIR must be writable"
        assert "emptyDir" in volumes[mounts[DATA_DIR]]


def test_k8s_services_and_budgets_select_their_pods() -> None:
    deployments = {d["metadata"]["name"]: d for d in objects("Deployment")}
    for kind, selector_of in (
        ("Service", lambda o: o["spec"]["selector"]),
        ("PodDisruptionBudget", lambda o: o["spec"]["selector"]["matchLabels"]),
    ):
        for obj in objects(kind):
            name = obj["metadata"]["name"]
            target = deployments.get(name) or one("StatefulSet", name)
            labels = target["spec"]["template"]["metadata"]["labels"]
            selector = selector_of(obj)
            assert selector.items() <= labels.items(), f"{kind} {name}"
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    assert {p["metadata"]["name"] for p in objects("PodDisruptionBudget")} >= {
        "worker",
        "receiver",
        "streamer",
    }


def test_k8s_probes_and_metrics() -> None:
    ports = {"receiver": (8080, 9180), "streamer": (8081, 9181)}
    for name, (port, metrics_port) in ports.items():
        d = one("Deployment", name)
        template = d["spec"]["template"]
        (c,) = template["spec"]["containers"]
        named = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert port in named.values()
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
            get = c[probe]["httpGet"]
            assert get["path"] == path, f"{name} {probe}"
            assert named.get(get["port"], get["port"]) == port, f"{name} {probe}"
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        # metrics on their own internal port, never the public one
        assert annotations["prometheus.io/port"] == str(metrics_port)
        assert metrics_port in named.values()
        assert annotations["prometheus.io/path"] == "/metrics"
        service = one("Service", name)
        assert service["spec"]["ports"][0]["port"] == port
        assert metrics_port not in [p["port"] for p in service["spec"]["ports"]]
    (flower,) = one("Deployment", "flower")["spec"]["template"]["spec"]["containers"]
    assert flower["readinessProbe"]["httpGet"]["path"] == "/healthcheck"


def test_k8s_worker_shuts_down_warm_and_beat_is_single() -> None:
    worker = one("Deployment", "worker")
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    beat = one("Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"


def test_k8s_redis_persists_with_aof() -> None:
    redis = one("StatefulSet", "redis")
    (c,) = redis["spec"]["template"]["spec"]["containers"]
    assert c["args"][c["args"].index("--appendonly") + 1] == "yes"
    claim = redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    assert {"name": claim, "mountPath": "/data"} in c["volumeMounts"]
    assert one("Service", "redis")["spec"]["ports"][0]["port"] == 6379


def test_k8s_redis_requires_the_password_from_its_secret() -> None:
    redis = one("StatefulSet", "redis")
    (c,) = redis["spec"]["template"]["spec"]["containers"]
    args = c["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    for name in ("REDIS_PASSWORD", "REDISCLI_AUTH"):  # the server; redis-cli in the probes
        assert env[name] == {"name": "redis-auth", "key": "password"}, name
    assert "password" in one("Secret", "redis-auth")["stringData"]


def test_k8s_only_the_dialer_pods_reach_redis() -> None:
    policy = one("NetworkPolicy", "redis")
    spec = policy["spec"]
    redis_labels = one("StatefulSet", "redis")["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= redis_labels.items()
    assert spec["policyTypes"] == ["Ingress"]
    rules = spec["ingress"]
    assert all(r["ports"] == [{"protocol": "TCP", "port": 6379}] for r in rules)
    peers = [p for r in rules for p in r["from"]]
    (dialer_selector,) = [p["podSelector"]["matchLabels"] for p in peers if len(p) == 1]
    # every dialer workload matches; Redis itself and anything unlabelled do not
    for w, _ in dialer_containers():
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert dialer_selector.items() <= labels.items(), w["metadata"]["name"]
    assert not dialer_selector.items() <= redis_labels.items()
    others = [p for p in peers if "namespaceSelector" in p]
    assert all(p["namespaceSelector"]["matchLabels"] for p in others), "no namespace wildcard"


def test_keda_scales_the_worker_on_celery_queues() -> None:
    (scaled,) = objects("ScaledObject")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target["name"] == one("Deployment", "worker")["metadata"]["name"]
    assert target.get("kind", "Deployment") == "Deployment"
    # the bounds are docs/scaling.md's (test_k8s_autoscalers_..._match_the_capacity_model)
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    triggers = spec["triggers"]
    assert all(t["type"] == "redis" for t in triggers)
    assert {t["metadata"]["listName"] for t in triggers} >= {"dial", "followup"}
    redis_host = one("Service", "redis")["metadata"]["name"]
    (auth,) = objects("TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "redis-auth", "key": "password"}
    ]
    for t in triggers:
        assert t["metadata"]["address"].startswith(f"{redis_host}."), t
        assert int(t["metadata"]["listLength"]) > 0
        assert t["authenticationRef"]["name"] == auth["metadata"]["name"]


def test_termination_grace_covers_the_streamer_drain() -> None:
    """A pod killed before its drain ends would cut the calls the drain protects."""
    drain_s = float(config_map_data()["STREAMER_DRAIN_S"])
    spec = one("Deployment", "streamer")["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    pre_stop_s = float(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] >= pre_stop_s + drain_s + 5
    streamer = compose()["services"]["streamer"]
    compose_drain_s = float(service_env(streamer)["STREAMER_DRAIN_S"])
    assert float(streamer["stop_grace_period"].rstrip("s")) >= compose_drain_s + 5


def test_keda_follows_a_rabbitmq_broker() -> None:
    """deploy/rabbitmq/: the same ScaledObject on KEDA's RabbitMQ scaler, same queues."""
    docs = [
        d
        for d in yaml.safe_load_all((DEPLOY / "rabbitmq" / "keda-scaledobject.yaml").read_text())
        if d
    ]
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    (auth,) = [d for d in docs if d["kind"] == "TriggerAuthentication"]
    (redis_scaled,) = objects("ScaledObject")
    assert scaled["metadata"]["name"] == redis_scaled["metadata"]["name"], "applying it replaces"
    assert scaled["spec"]["scaleTargetRef"] == redis_scaled["spec"]["scaleTargetRef"]
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"rabbitmq"}
    assert {t["metadata"]["queueName"] for t in triggers} == {
        t["metadata"]["listName"] for t in redis_scaled["spec"]["triggers"]
    }
    assert all(t["metadata"]["mode"] == "QueueLength" for t in triggers)
    # the broker URL (with its password) from the Secret key the dialer itself reads
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref == {"parameter": "host", "name": "dialer-secrets", "key": "CELERY_BROKER_URL"}
    assert "CELERY_BROKER_URL" in Settings.model_fields
    assert "CELERY_BROKER_URL" not in config_map_data(), "it carries a password: Secret only"


def test_compose_rabbitmq_profile() -> None:
    c = compose()
    mq = c["services"]["rabbitmq"]
    assert mq["profiles"] == ["rabbitmq"]
    assert "ports" not in mq, "reachable only on the compose network"
    assert mq["environment"]["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD")
    assert any(v.startswith("rabbitmq-data:") for v in mq["volumes"])
    assert c["x-dialer-env"]["CELERY_BROKER_URL"] == "${CELERY_BROKER_URL:-}"


def test_servers_with_processes_expose_a_metrics_port_per_process() -> None:
    """``--processes N``: process i serves /metrics on the base port + i (see processes.py)."""
    base = {"receiver": 9180, "streamer": 9181}
    for name, metrics in base.items():
        (c,) = one("Deployment", name)["spec"]["template"]["spec"]["containers"]
        args = c["args"]
        n = int(args[args.index("--processes") + 1]) if "--processes" in args else 1
        ports = {p["containerPort"] for p in c["ports"]}
        assert {metrics + i for i in range(n)} <= ports, name
    for name in base:
        command = compose()["services"][name]["command"]
        assert "--processes" in command, name


def test_k8s_autoscalers_own_their_replicas_and_match_the_capacity_model() -> None:
    """HPAs (receiver, streamer) and KEDA (worker): bounds as docs/scaling.md gives them."""
    doc = (ROOT / "docs" / "scaling.md").read_text()
    scaled = [(h["spec"]["scaleTargetRef"]["name"], h) for h in objects("HorizontalPodAutoscaler")]
    assert {name for name, _ in scaled} == {"receiver", "streamer"}
    for name, hpa in scaled:
        assert "replicas" not in one("Deployment", name)["spec"], f"{name}: the HPA owns replicas"
        bounds = f"2..{hpa['spec']['maxReplicas']}"
        assert hpa["spec"]["minReplicas"] == 2
        assert f"| {name} | HPA on CPU (`hpa.yaml`) | {bounds} |" in doc, name
    (keda,) = objects("ScaledObject")
    assert "replicas" not in one("Deployment", "worker")["spec"]
    bounds = f"{keda['spec']['minReplicaCount']}..{keda['spec']['maxReplicaCount']}"
    assert f"(`keda-scaledobject.yaml`) | {bounds} |" in doc
