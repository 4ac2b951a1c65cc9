"""The production stack's files hang together: every referenced file, variable, volume and healthcheck exists."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LONG_RUNNING = {"postgres", "minio", "mlflow", "prefect-server"}


def _env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_every_required_variable_is_in_env_example():
    text = (ROOT / "docker-compose.yml").read_text()
    # ${VAR}, ${VAR:?msg} need a value; ${VAR:-default} does not; $$VAR is the container's own
    required = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?::\?[^}]*)?\}", text))
    assert required, "the compose file should take its credentials from the environment"
    assert required <= set(_env_example()), required - set(_env_example())


def test_no_secret_is_written_into_the_compose_file():
    for name, svc in SERVICES.items():
        for key, value in (svc.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET")):
                assert str(value).startswith("${"), f"{name}.{key} must come from .env"


def test_ports_are_bound_to_loopback_only():
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_named_volumes_are_declared_and_bind_mounts_exist():
    declared = set(COMPOSE["volumes"])
    for name, svc in SERVICES.items():
        for mount in svc.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_build_contexts_and_copied_files_exist():
    for name, svc in SERVICES.items():
        build = svc.get("build")
        if not build:
            continue
        dockerfile = ROOT / build["context"] / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile.name} missing"
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for source in line.split()[1:-1]:
                    assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"


def test_long_running_services_have_healthchecks_and_dependencies_wait_for_them():
    assert {n for n, s in SERVICES.items() if "healthcheck" in s} >= LONG_RUNNING
    for name, svc in SERVICES.items():
        for dep, rule in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep}, which has no healthcheck"


def test_gpu_worker_reserves_a_device_only_in_its_profile():
    gpu = SERVICES["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]


def test_workers_point_the_pipeline_at_the_stack():
    env = SERVICES["worker"]["environment"]
    assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_compose_config_accepts_the_file(tmp_path):
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    done = subprocess.run(["docker", "compose", "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"),
                           "config", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_prefect_yaml_parses_as_prefect_reads_it():
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule

    model = PrefectYamlModel.model_validate(PREFECT_YAML)
    assert len(model.deployments) == 2
    for deployment in PREFECT_YAML["deployments"]:
        for schedule in deployment["schedules"]:
            _schedule_config_to_deployment_schedule(schedule)  # raises on a bad cron or time zone


def test_prefect_yaml_entrypoints_name_real_flows_and_their_parameters_validate():
    import importlib
    import inspect

    from lstm_core.config import PipelineConfig, ScoreConfig

    models = {"training_pipeline": PipelineConfig, "batch_scoring": ScoreConfig}
    found = {}
    for deployment in PREFECT_YAML["deployments"]:
        path, func = deployment["entrypoint"].split(":")
        assert (ROOT / path).is_file(), path
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), func)
        (param,) = inspect.signature(flow.fn).parameters  # each flow takes one config model
        assert set(deployment["parameters"]) == {param}
        models[flow.name].model_validate(deployment["parameters"][param])
        found[flow.name] = deployment["name"]
    assert set(found) == set(models)


def test_prefect_yaml_work_pool_is_the_compose_workers_and_the_image_holds_the_code():
    pools = {d["work_pool"]["name"] for d in PREFECT_YAML["deployments"]}
    command = SERVICES["worker"]["command"].split()
    assert pools == {command[command.index("--pool") + 1]} == {"lstm-pipeline"}
    (step,) = PREFECT_YAML["pull"]
    workdir = step["prefect.deployments.steps.set_working_directory"]["directory"]
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    assert f"WORKDIR {workdir}" in dockerfile and "COPY prefect.yaml" in dockerfile
    assert "deploy --all" in " ".join(SERVICES["deploy"]["command"])
