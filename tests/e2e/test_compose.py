"""The production stack's files hang together: every referenced file, variable, volume and healthcheck exists."""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LONG_RUNNING = {"postgres", "minio", "mlflow", "prefect-server"}
CHECK = "check-secrets"
# ${VAR}, ${VAR:?msg} need a value; ${VAR:-default} does not; $$VAR is the container's own
REF = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?::[?-][^}]*)?\}")


def _env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_every_required_variable_is_in_env_example():
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?::\?[^}]*)?\}", text))
    assert required, "the compose file should take its credentials from the environment"
    assert required <= set(_env_example()), required - set(_env_example())


def test_no_secret_is_written_into_the_compose_file():
    for name, svc in SERVICES.items():
        for key, value in (svc.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "AUTH_STRING")):
                assert str(value).startswith("${"), f"{name}.{key} must come from .env"
            masked = REF.sub(lambda m: f"<{m.group(1)}>", str(value))
            for password in re.findall(r"://[^:/@]+:([^@]+)@", masked):  # user:password@ in a URL
                assert re.fullmatch(r"<[A-Z0-9_]+>", password), f"{name}.{key} holds a password not from .env"


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


# --- hardening: auth, non-root images, pinned packages, one login per service, no placeholder secrets ---

def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def _refs(value: str) -> set[str]:
    return set(REF.findall(value))


def _expand(value: str, env: dict[str, str]) -> str:
    return REF.sub(lambda m: env[m.group(1)], value)


def _dockerfiles() -> dict[str, str]:
    """Dockerfile path (relative) -> text, for every image the compose file builds."""
    files = {svc["build"]["dockerfile"] for svc in SERVICES.values() if "build" in svc}
    return {f: (ROOT / f).read_text() for f in sorted(files)}


def test_prefect_server_requires_basic_auth_and_every_client_sends_it(monkeypatch):
    from prefect.settings import Settings

    server = _env("prefect-server")["PREFECT_SERVER_API_AUTH_STRING"]
    assert _refs(server) == {"PREFECT_AUTH_USER", "PREFECT_AUTH_PASSWORD"}
    clients = {n for n, s in SERVICES.items()
               if "PREFECT_API_URL" in _env(n) or "prefect " in json.dumps([s.get("command"), s.get("entrypoint")])}
    assert clients == {"prefect-server", "deploy", "worker", "worker-gpu"}
    for name in clients:
        assert _env(name).get("PREFECT_API_AUTH_STRING") == server, f"{name} does not send the server's auth string"
    # the names are the settings Prefect 3.8 reads: the server's check and the client's header
    values = {**_env_example(), "PREFECT_AUTH_USER": "ops", "PREFECT_AUTH_PASSWORD": "0123456789abcdef0123"}
    for key in ("PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING"):
        monkeypatch.setenv(key, _expand(_env("prefect-server")[key], values))
    settings = Settings()
    assert settings.server.api.auth_string.get_secret_value() == "ops:0123456789abcdef0123"
    assert settings.api.auth_string.get_secret_value() == "ops:0123456789abcdef0123"
    url = _expand(_env("prefect-server")["PREFECT_SERVER_DATABASE_CONNECTION_URL"], values)
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", url)
    assert Settings().server.database.connection_url.get_secret_value() == url


def test_every_built_image_runs_as_a_non_root_user_that_owns_its_volume():
    assert set(_dockerfiles()) == {"infra/Dockerfile", "infra/mlflow.Dockerfile"}
    for path, text in _dockerfiles().items():
        users = re.findall(r"^USER\s+(\S+)\s*$", text, flags=re.M)
        assert users, f"{path} has no USER: its container runs as root"
        user = users[-1]
        assert user not in {"root", "0", "0:0"}, path
        assert re.search(rf"useradd\b[^\n]*\s{user}\s*(\\|$)", text, flags=re.M), f"{path}: {user} is never created"
        last_run = max(m.start() for m in re.finditer(r"^RUN ", text, flags=re.M))
        assert text.index(f"USER {user}") > last_run, f"{path}: USER must follow every RUN (installs stay root's)"
        for volume in re.findall(r"^VOLUME\s+(\S+)", text, flags=re.M):  # a fresh named volume copies this owner
            assert re.search(rf"chown -R {user}:{user} {volume}\b", text), f"{path}: {volume} not owned by {user}"
    for name, svc in SERVICES.items():
        if "build" in svc:
            assert str(svc.get("user", "")).split(":")[0] not in {"root", "0"}, f"{name} overrides the image's user"


CONSTRAINTS = ROOT / "infra" / "constraints.txt"


def _pins() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[A-Za-z0-9_.\-]+", name) and re.fullmatch(r"[0-9][0-9A-Za-z.]*", version), line
            pins[canonicalize_name(name)] = version
    return pins


def test_constraints_pin_every_dependency_within_pyprojects_ranges():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = _pins()
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11 (the images' version)")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    image_extras = ["psycopg2-binary", "boto3", "mlflow[auth]", "flask-wtf"]
    for text in deps + image_extras:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in {CONSTRAINTS.name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} breaks {req}"


def test_the_images_install_under_the_constraints():
    torch_pin = _pins()["torch"]
    for path, text in _dockerfiles().items():
        assert "COPY infra/constraints.txt /opt/constraints.txt" in text, path
        installs = re.findall(r"^RUN pip install .*$", text, flags=re.M)
        assert installs, path
        for line in installs:
            if "--no-deps" in line:  # torch alone, from its own index, at the pinned version
                assert '"torch==${TORCH_VERSION}"' in line, line
            else:
                assert "-c /opt/constraints.txt" in line, f"{path} installs without the constraints: {line}"
    assert re.search(rf"^ARG TORCH_VERSION={re.escape(torch_pin)}$", _dockerfiles()["infra/Dockerfile"], re.M)


def _postgres_urls() -> dict[str, str]:
    """service -> every Postgres URL it connects with (its environment and its start script)."""
    urls = {}
    for name in SERVICES:
        found = [v for v in _env(name).values() if v.startswith("postgresql")]
        command = json.dumps(SERVICES[name].get("command"))
        if "/opt/mlflow-start.sh" in command:
            script = (ROOT / "infra" / "mlflow-start.sh").read_text()
            found += re.findall(r'"(postgresql[^"\s]*)', script)
        if found:
            urls[name] = found
    return urls


def test_each_service_connects_to_postgres_with_its_own_role_and_database():
    urls = _postgres_urls()
    assert set(urls) == {"mlflow", "prefect-server"}
    (prefect,) = urls["prefect-server"]
    assert re.fullmatch(r"postgresql\+asyncpg://\$\{PREFECT_DB_USER:\?[^}]*\}:\$\{PREFECT_DB_PASSWORD:\?[^}]*\}"
                        r"@postgres:5432/prefect", prefect), prefect
    script = (ROOT / "infra" / "mlflow-start.sh").read_text()
    assert 'db="postgresql+psycopg2://${MLFLOW_DB_USER}:${MLFLOW_DB_PASSWORD}@postgres:5432"' in script
    assert "--backend-store-uri \"${db}/mlflow\"" in script and "database_uri = ${db}/mlflow_auth" in script
    assert _refs(_env("mlflow")["MLFLOW_DB_USER"]) == {"MLFLOW_DB_USER"}
    # the roles own exactly these databases, and nothing else can connect to them
    init = (ROOT / "infra" / "postgres" / "init.sh").read_text()
    owners = set(re.findall(r"\('(\w+)', :'(\w+)_user'\)", init))
    assert owners == {("mlflow", "mlflow"), ("mlflow_auth", "mlflow"), ("prefect", "prefect")}
    assert "NOSUPERUSER NOCREATEDB NOCREATEROLE" in init
    assert "REVOKE ALL ON DATABASE postgres, mlflow, mlflow_auth, prefect FROM PUBLIC;" in init
    # the init script gets every variable it reads, and postgres runs it on a fresh volume
    needed = set(re.findall(r'"\$([A-Z_]+)"', init))
    assert needed == {"POSTGRES_USER", "MLFLOW_DB_USER", "MLFLOW_DB_PASSWORD", "PREFECT_DB_USER", "PREFECT_DB_PASSWORD"}
    assert needed <= set(_env("postgres"))
    assert "./infra/postgres/init.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro" in SERVICES["postgres"]["volumes"]


def test_only_their_own_containers_see_the_admin_passwords():
    holders = {var: {n for n in SERVICES if any(var in _refs(v) for v in _env(n).values())}
               for var in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD")}
    assert holders["POSTGRES_PASSWORD"] == {"postgres", CHECK}
    assert holders["MINIO_ROOT_PASSWORD"] == {"minio", "minio-init", CHECK}


def test_mlflow_reaches_minio_with_its_own_key_limited_to_its_bucket():
    env = _env("mlflow")
    assert _refs(env["AWS_ACCESS_KEY_ID"]) == {"MLFLOW_S3_ACCESS_KEY"}
    assert _refs(env["AWS_SECRET_ACCESS_KEY"]) == {"MLFLOW_S3_SECRET_KEY"}
    assert not {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} & set().union(*map(_refs, env.values()))
    init = (ROOT / "infra" / "minio" / "init.sh").read_text()
    assert SERVICES["minio-init"]["entrypoint"] == ["/bin/sh", "/minio-init.sh"]
    assert "./infra/minio/init.sh:/minio-init.sh:ro" in SERVICES["minio-init"]["volumes"]
    assert 'mc admin user add local "$MLFLOW_S3_ACCESS_KEY" "$MLFLOW_S3_SECRET_KEY"' in init
    assert 'mc admin policy create local "$policy" /tmp/policy.json' in init
    assert 'mc admin policy attach local "$policy" --user "$MLFLOW_S3_ACCESS_KEY"' in init
    policy = json.loads(init.split("<<JSON\n", 1)[1].split("\nJSON\n", 1)[0].replace("${MLFLOW_BUCKET}", "mlflow"))
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert resources == {"arn:aws:s3:::mlflow", "arn:aws:s3:::mlflow/*"}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert actions and all(a.startswith("s3:") and "*" not in a and "Policy" not in a for a in actions), actions
    assert {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MLFLOW_S3_ACCESS_KEY", "MLFLOW_S3_SECRET_KEY",
            "MLFLOW_BUCKET"} <= set(_env("minio-init"))


def test_the_secrets_check_covers_every_secret_and_everything_waits_for_it():
    check = SERVICES[CHECK]
    assert check["entrypoint"] == ["/bin/sh", "/check-secrets.sh"]
    assert "./infra/check-secrets.sh:/check-secrets.sh:ro" in check["volumes"]
    args = check["command"]
    text = (ROOT / "docker-compose.yml").read_text()
    secrets = {v for v in REF.findall(text) if "PASSWORD" in v or "SECRET" in v}
    assert secrets == {a for a in args if "!=" not in a}, "every secret the stack uses must be checked"
    pairs = {tuple(a.split("!=")) for a in args if "!=" in a}
    assert {("MLFLOW_S3_ACCESS_KEY", "MINIO_ROOT_USER"), ("MLFLOW_DB_USER", "POSTGRES_USER"),
            ("PREFECT_DB_USER", "POSTGRES_USER")} <= pairs
    named = {n for a in args for n in a.split("!=")}
    assert named == {k for k, v in check["environment"].items() if _refs(str(v)) == {k}}
    for name, svc in SERVICES.items():
        if name != CHECK:
            assert (svc.get("depends_on") or {}).get(CHECK) == {"condition": "service_completed_successfully"}, name


def _run_check_in(env: dict[str, str], shell: tuple[str, ...] = ("sh",)) -> subprocess.CompletedProcess:
    return subprocess.run([*shell, str(ROOT / "infra" / "check-secrets.sh"), *SERVICES[CHECK]["command"]],
                          env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True)


def _good_env() -> dict[str, str]:
    env = {**_env_example()}
    for i, name in enumerate(sorted(k for k in env if "PASSWORD" in k or "SECRET" in k)):
        env[name] = f"{i:02d}" + "a1b2c3d4e5f6a7b8c9d0"  # 22 characters, each distinct
    return env


# the image runs it with BusyBox's sh (Alpine); here with whichever shells this machine has
@pytest.mark.parametrize("shell", [("sh",), ("bash", "--posix"), ("busybox", "sh")], ids=" ".join)
def test_the_secrets_check_refuses_placeholders_in_one_line_naming_the_variable(shell):
    if shutil.which(shell[0]) is None:
        pytest.skip(f"no {shell[0]}")
    _run_check = functools.partial(_run_check_in, shell=shell)
    done = _run_check(_good_env())
    assert done.returncode == 0, done.stderr
    # .env.example as shipped: every password is refused, one line each
    done = _run_check(_env_example())
    assert done.returncode == 1
    placeholders = sorted(k for k, v in _env_example().items() if "change-me" in v)
    lines = done.stderr.splitlines()
    assert [line.split()[3] for line in lines] == [a for a in SERVICES[CHECK]["command"] if a in placeholders]
    assert all(line.startswith("refusing to start: ") and "placeholder" in line for line in lines)
    cases = {
        "MLFLOW_DB_PASSWORD": ("change-me-mlflow-db", "MLFLOW_DB_PASSWORD still holds a placeholder"),
        "PREFECT_AUTH_PASSWORD": ("0123456789abcde", "PREFECT_AUTH_PASSWORD is 15 characters long, under 16"),
        "POSTGRES_PASSWORD": ("0123456789abcdef@x", "POSTGRES_PASSWORD holds a character outside"),
        "MINIO_ROOT_PASSWORD": ("", "MINIO_ROOT_PASSWORD is empty or unset"),
        "MLFLOW_S3_ACCESS_KEY": ("pipeline", "MLFLOW_S3_ACCESS_KEY must differ from MINIO_ROOT_USER"),
        "MLFLOW_DB_USER": ("pipeline", "MLFLOW_DB_USER must differ from POSTGRES_USER"),
    }
    for name, (value, message) in cases.items():
        done = _run_check({**_good_env(), name: value})
        assert done.returncode == 1, name
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"refusing to start: {message}"), line
        assert not value or value not in line, "the check must not print the secret"
    # sixteen characters is enough
    assert _run_check({**_good_env(), "PREFECT_AUTH_PASSWORD": "0123456789abcdef"}).returncode == 0


def test_the_worker_confines_deployments_to_its_data_volume():
    from lstm_pipeline.data_roots import ENV_VAR

    for worker in ("worker", "worker-gpu"):
        env = _env(worker)
        roots = [PurePosixPath(r) for r in env[ENV_VAR].split(":")]
        assert roots == [PurePosixPath("/data")]
        mounts = {PurePosixPath(m.split(":")[1]) for m in SERVICES[worker]["volumes"]}
        assert all(root in mounts for root in roots), "a data root must be the worker's volume"
        # the default output (under the pipeline home) and prefect.yaml's data files lie inside
        paths = [env["LSTM_PIPELINE_HOME"]] + [
            d["parameters"].get("config", {}).get("data", {}).get("path") or d["parameters"]["params"]["data"]
            for d in PREFECT_YAML["deployments"]]
        for path in paths:
            assert any(PurePosixPath(path).is_relative_to(root) for root in roots), path


def test_the_build_context_leaves_env_files_out():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".env.*" in ignored and ".venv" in ignored


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: run them as the postgres account when this process is root."""
    if os.geteuid() != 0:
        return argv
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in argv)]


@pytest.mark.slow
@pytest.mark.skipif(not all(shutil.which(t) for t in ("initdb", "pg_ctl", "psql")), reason="no PostgreSQL server")
def test_the_postgres_init_script_gives_each_service_only_its_own_database():
    """infra/postgres/init.sh on a fresh cluster, twice (it must be re-runnable), then each role's reach."""
    import tempfile

    if os.geteuid() == 0:
        try:
            import pwd

            pg = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres account for initdb")
    workdir = Path(tempfile.mkdtemp(prefix="pg-roles-"))
    if os.geteuid() == 0:
        os.chown(workdir, pg.pw_uid, pg.pw_gid)
    data, port = workdir / "data", "55439"
    env = {"PATH": os.environ["PATH"], "PGHOST": str(workdir), "PGPORT": port, "POSTGRES_USER": "pipeline",
           "MLFLOW_DB_USER": "mlflow", "MLFLOW_DB_PASSWORD": "mlflow-0123456789abcdef",
           "PREFECT_DB_USER": "prefect", "PREFECT_DB_PASSWORD": "prefect-0123456789abcdef"}
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env)
    assert run(_as_postgres(["initdb", "-D", str(data), "-U", "pipeline", "--auth-local=trust",
                             "--auth-host=scram-sha-256"])).returncode == 0
    started = run(_as_postgres(["pg_ctl", "-D", str(data), "-w", "-l", str(workdir / "log"), "-o",
                                f"-k {workdir} -p {port} -c listen_addresses=127.0.0.1", "start"]))
    assert started.returncode == 0, started.stderr
    try:
        # mlflow as a volume made before the roles held it: the superuser owns the database and its objects
        for db, sql in [("postgres", "CREATE DATABASE mlflow"),
                        ("mlflow", "CREATE TYPE status AS ENUM ('RUNNING'); CREATE SEQUENCE free_seq; "
                                   "CREATE TABLE runs (id serial PRIMARY KEY, s status); CREATE VIEW v AS SELECT 1")]:
            assert run(["psql", "-U", "pipeline", "-d", db, "-c", sql]).returncode == 0
        for _ in range(2):
            done = run(["sh", str(ROOT / "infra" / "postgres" / "init.sh")])
            assert done.returncode == 0, done.stderr

        def psql(user: str, db: str, sql: str) -> subprocess.CompletedProcess:
            password = env[f"{user.upper()}_DB_PASSWORD"]
            return run(["psql", "-h", "127.0.0.1", "-U", user, "-d", db, "-Atc", sql],
                       env={**env, "PGPASSWORD": password})

        for user, db in [("mlflow", "mlflow"), ("mlflow", "mlflow_auth"), ("prefect", "prefect")]:
            done = psql(user, db, "CREATE TABLE t (x int); DROP TABLE t; SELECT current_user")
            assert (done.returncode, done.stdout.split()[-1]) == (0, user), done.stderr
        for user, db in [("mlflow", "prefect"), ("prefect", "mlflow"), ("prefect", "mlflow_auth"),
                         ("mlflow", "postgres"), ("prefect", "postgres")]:
            done = psql(user, db, "SELECT 1")
            assert done.returncode != 0 and "does not have CONNECT privilege" in done.stderr, (user, db)
        # the old objects now belong to mlflow's role, so its migrations can change them
        done = psql("mlflow", "mlflow", "ALTER TABLE runs ADD COLUMN x int; ALTER TYPE status ADD VALUE 'DONE'; "
                                        "DROP VIEW v; SELECT nextval('runs_id_seq') + nextval('free_seq')")
        assert (done.returncode, done.stdout.split()[-1:]) == (0, ["2"]), done.stderr
        done = psql("mlflow", "mlflow", "CREATE DATABASE extra")
        assert "permission denied to create database" in done.stderr
        owners = run(["psql", "-U", "pipeline", "-d", "postgres", "-Atc",
                      "SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database "
                      "WHERE datname IN ('mlflow', 'mlflow_auth', 'prefect') ORDER BY 1"]).stdout.split()
        assert owners == ["mlflow=mlflow", "mlflow_auth=mlflow", "prefect=prefect"]
        trgm = run(["psql", "-U", "pipeline", "-d", "prefect", "-Atc",
                    "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"]).stdout.strip()
        assert trgm == "1"
    finally:
        run(_as_postgres(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]))
        shutil.rmtree(workdir, ignore_errors=True)
