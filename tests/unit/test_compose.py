"""docker-compose.yml, Dockerfile, .dockerignore and deploy/ agree with the code.

Docker is not needed: the compose file is parsed as YAML (anchors and `<<` merges resolved,
`${VAR...}` interpolations left as text) and compared with what the code defines, so a renamed
setting, module, route, search attribute or database fails here instead of in production.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from domain.search_attributes import ALL as SEARCH_ATTRIBUTES
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "api", "worker")
REQUIRED_SERVICES = {"postgres", "temporal", "temporal-ui", "migrate", "api", "worker"}
TEMPORAL_TYPES = {"Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList"}
# `${NAME:?message}`: compose refuses to start while NAME is unset or empty
REQUIRED_VAR = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*):\?[^}]+\}")
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|(^|_)KEY$")


class _StrictLoader(yaml.SafeLoader):
    """Rejects a key written twice in one mapping (YAML keeps the last one silently; compose fails)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@cache
def compose() -> dict:
    return yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=_StrictLoader)


def services() -> dict[str, dict]:
    return compose()["services"]


def env(service: str) -> dict[str, str]:
    value = services()[service].get("environment") or {}
    if isinstance(value, list):  # the `- KEY=value` form
        value = dict(item.split("=", 1) if "=" in item else (item, "") for item in value)
    return {str(k): str(v) for k, v in value.items()}


def argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def command_text(service: str) -> str:
    return " ".join(argv(services()[service].get("command", [])))


def depends_on(service: str) -> dict[str, str]:
    value = services()[service].get("depends_on") or {}
    if isinstance(value, list):
        return {name: "service_started" for name in value}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in value.items()}


def healthcheck_text(service: str) -> str:
    check = services()[service].get("healthcheck") or {}
    assert not check.get("disable"), f"{service}: healthcheck disabled"
    test = check.get("test")
    assert test, f"{service}: no healthcheck"
    return " ".join(argv(test))


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with `\\` continuations joined and comments dropped."""
    logical, current = [], ""
    for line in dockerfile().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.strip().partition(" ")
        logical.append((keyword.upper(), rest.strip()))
        current = ""
    return logical


@cache
def code_facts() -> dict:
    """Import the entry points in a clean interpreter with no Switchboard env: import-time code
    must not need configuration or connect anywhere (api.py builds its app at import)."""
    probe = """
import importlib, inspect, json
api = importlib.import_module("api")
worker = importlib.import_module("worker")
seed = importlib.import_module("deploy.seed")
print(json.dumps({
    "app_type": type(api.app).__name__,
    "routes": sorted(getattr(r, "path", "") for r in api.app.routes),
    "worker_main": inspect.iscoroutinefunction(getattr(worker, "main", None)),
    "seed_main": callable(getattr(seed, "main", None)),
}))
"""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
    clean_env = {k: v for k, v in os.environ.items() if k in keep}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=clean_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"importing the entry points failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def settings_env_names() -> set[str]:
    prefix = Settings.model_config.get("env_prefix", "") or ""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add((prefix + name).upper())
        if isinstance(field.validation_alias, str):
            names.add(field.validation_alias.upper())
        if isinstance(field.alias, str):
            names.add(field.alias.upper())
    return names


def init_sql() -> str:
    """The SQL of the postgres init scripts docker-compose.yml mounts."""
    for volume in services()["postgres"].get("volumes", []):
        host, _, target = str(volume).partition(":")
        if target.split(":")[0] == "/docker-entrypoint-initdb.d":
            folder = ROOT / host
            return "\n".join(p.read_text() for p in sorted(folder.iterdir()) if p.suffix in {".sh", ".sql"})
    pytest.fail("postgres: nothing mounted on /docker-entrypoint-initdb.d creates Switchboard's database")


def database_url() -> re.Match:
    url = env("api")["DATABASE_URL"]
    match = re.fullmatch(
        r"postgres(?:ql)?(?:\+asyncpg)?://(?P<user>[^:@/]+):(?P<password>.+)@(?P<host>[^:@/]+):(?P<port>\d+)/(?P<db>\w+)",
        url,
    )
    assert match, f"DATABASE_URL is not postgresql://user:password@host:port/db: {url}"
    return match


def mounted_script(service: str) -> str:
    """Text of the deploy/ script a one-shot service runs (through its bind mounts)."""
    spec = services()[service]
    words = argv(spec.get("entrypoint", [])) + argv(spec.get("command", []))
    for volume in spec.get("volumes", []):
        host, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        for word in words:
            if word.startswith(target.rstrip("/") + "/"):
                path = ROOT / host / word[len(target.rstrip("/")) + 1 :]
                assert path.is_file(), f"{service} runs {word}, but {path} does not exist"
                return path.read_text()
    pytest.fail(f"{service}: runs no script mounted from the repository")


# -- services and the one image ---------------------------------------------------------------


def test_required_services_exist():
    assert set(services()) >= REQUIRED_SERVICES, REQUIRED_SERVICES - set(services())


def test_app_services_share_one_image_built_from_the_dockerfile():
    images = {
        (str(services()[s].get("image")), json.dumps(services()[s].get("build"), sort_keys=True)) for s in APP_SERVICES
    }
    assert len(images) == 1, f"api, worker and migrate must run one image: {images}"
    build = services()["api"]["build"]
    context = ROOT / (build["context"] if isinstance(build, dict) else build)
    assert context.resolve() == ROOT
    assert (context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")).is_file()
    assert services()["api"].get("image"), "name the image so the three services provably share it"


def test_api_command_serves_api_app_on_the_checked_port():
    words = argv(services()["api"]["command"])
    assert "uvicorn" in words[0] or words[:3] == ["python", "-m", "uvicorn"], words
    assert "api:app" in words
    port = words[words.index("--port") + 1]
    assert (ROOT / "api.py").is_file()
    facts = code_facts()
    assert facts["app_type"] == "FastAPI"
    published = [str(p).rsplit(":", 1)[-1] for p in services()["api"].get("ports", [])]
    assert port in published, f"api listens on {port}, publishes {published}"
    match = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/-]*)", healthcheck_text("api"))
    assert match, "api healthcheck does not probe the api over HTTP"
    assert match.group(1) == port
    assert match.group(2) == "/readyz"
    assert "/readyz" in facts["routes"], "api.py has no /readyz route"


def test_worker_runs_worker_py():
    words = argv(services()["worker"]["command"])
    assert words[0].startswith("python") and words[-1] == "worker.py", words
    source = (ROOT / "worker.py").read_text()
    assert 'if __name__ == "__main__":' in source
    assert code_facts()["worker_main"], "worker.py has no async main()"


def test_migrate_runs_alembic_then_the_seed():
    text = command_text("migrate")
    assert re.search(r"(^|[\s;&|])alembic upgrade head($|[\s;&|])", text), text
    assert re.search(r"alembic upgrade head\s*&&\s*python -m deploy\.seed($|[\s;&|])", text), text
    ini = ROOT / "alembic.ini"
    assert ini.is_file()
    location = re.search(r"^script_location\s*=\s*(.+)$", ini.read_text(), re.M).group(1).strip()
    assert (ROOT / location.replace("%(here)s/", "")).is_dir(), location
    assert code_facts()["seed_main"]
    assert "from setup.seed import seed" in (ROOT / "deploy" / "seed.py").read_text()
    # the seed must never generate a password into the logs: production chooses it
    assert REQUIRED_VAR.fullmatch(env("migrate")["ADMIN_PASSWORD"])


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_env_names_are_settings_fields(service):
    unknown = set(env(service)) - settings_env_names()
    assert not unknown, f"{service}: not fields of infra.settings.Settings (typo?): {sorted(unknown)}"


@pytest.mark.parametrize("service", ["api", "worker"])
def test_app_env_points_at_the_stack(service):
    values = env(service)
    assert {"DATABASE_URL", "TEMPORAL_ADDRESS", "CREDENTIALS_KEY"} <= set(values)
    assert values == env("api"), "api and worker must share one configuration (x-app-env)"
    host, port = values["TEMPORAL_ADDRESS"].split(":")
    assert host in services() and port == "7233", values["TEMPORAL_ADDRESS"]
    assert database_url()["host"] in services()


def test_secrets_come_from_required_interpolation():
    for name, _spec in services().items():
        for key, value in env(name).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_VAR.fullmatch(value), f"{name}.{key} must be ${{VAR:?...}}, not a literal"
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert REQUIRED_VAR.fullmatch(password), f"{name}.{key}: password in the URL is a literal"
    assert "CREDENTIALS_KEY" in env("api") and "ADMIN_PASSWORD" in env("migrate")


def test_databases_and_roles_match_the_postgres_init_script():
    sql = init_sql()
    roles = set(re.findall(r"CREATE ROLE (\w+)", sql))
    databases = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql))
    url = database_url()
    assert url["host"] == "postgres"
    assert databases.get(url["db"]) == url["user"] and url["user"] in roles
    temporal = env("temporal")
    assert temporal["POSTGRES_SEEDS"] == "postgres" and temporal["DB"].startswith("postgres")
    for db in (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]):
        assert databases.get(db) == temporal["POSTGRES_USER"], db
    assert url["db"] not in (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]), "Switchboard needs its own database"
    # each role's password reaches the init script under the name the URL / Temporal uses
    postgres_env = env("postgres")
    for secret in (url["password"], temporal["POSTGRES_PWD"]):
        var = REQUIRED_VAR.fullmatch(secret)["name"]
        assert var in postgres_env and f"${var}" in sql, var
    assert env("temporal-schema") == {k: v for k, v in temporal.items() if k in env("temporal-schema")}


def test_postgres_image_and_healthcheck():
    image = services()["postgres"]["image"]
    assert re.fullmatch(r"postgres:(16|17)([.-].*)?", image), image
    assert "pg_isready" in healthcheck_text("postgres")
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in services()["postgres"]["volumes"])


# -- Temporal -----------------------------------------------------------------------------------


def search_attribute_service() -> str:
    found = [s for s in services() if "SEARCH_ATTRIBUTES" in env(s)]
    assert len(found) == 1, f"exactly one service registers search attributes: {found}"
    return found[0]


def test_registered_search_attributes_equal_the_code():
    service = search_attribute_service()
    pairs = dict(pair.split("=", 1) for pair in env(service)["SEARCH_ATTRIBUTES"].split())
    assert pairs == SEARCH_ATTRIBUTES
    assert set(pairs.values()) <= TEMPORAL_TYPES
    script = mounted_script(service)
    assert "$SEARCH_ATTRIBUTES" in script
    assert "temporal operator search-attribute create" in script
    assert re.search(r'\*"already exists"\*', script), "registration must accept 'already exists'"
    assert "temporal operator cluster health" in script
    assert "temporal operator namespace create" in script


def test_temporal_address_and_namespace_agree_everywhere():
    app = env("api")
    for service in (search_attribute_service(), "temporal-ui"):
        assert env(service)["TEMPORAL_ADDRESS"] == app["TEMPORAL_ADDRESS"], service
    assert env(search_attribute_service())["TEMPORAL_NAMESPACE"] == app["TEMPORAL_NAMESPACE"]
    assert any(str(p).endswith(":8080") for p in services()["temporal-ui"].get("ports", []))


def test_temporal_healthcheck_and_config_files():
    assert healthcheck_text("temporal")
    temporal = env("temporal")
    path = temporal["DYNAMIC_CONFIG_FILE_PATH"]
    for volume in services()["temporal"].get("volumes", []):
        host, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if path.startswith(target + "/"):
            assert (ROOT / host / path[len(target) + 1 :]).is_file(), path
            break
    else:
        pytest.fail(f"{path} is not mounted into the temporal service")
    schema = mounted_script("temporal-schema")
    assert "temporal-sql-tool" in schema and "update-schema" in schema


def test_bind_mounted_paths_exist():
    for name, spec in services().items():
        for volume in spec.get("volumes", []):
            host = str(volume).split(":")[0]
            if host.startswith("."):
                assert (ROOT / host).exists(), f"{name}: {host} does not exist"


# -- start-up order -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["api", "worker"])
def test_app_waits_for_migrations_database_and_temporal(service):
    deps = depends_on(service)
    assert deps.get("migrate") == "service_completed_successfully"
    assert deps.get("postgres") == "service_healthy"
    assert deps.get("temporal") == "service_healthy"
    assert deps.get(search_attribute_service()) == "service_completed_successfully"


def test_one_shot_and_server_dependencies():
    assert depends_on("migrate").get("postgres") == "service_healthy"
    assert depends_on("temporal").get("postgres") == "service_healthy"
    assert depends_on("temporal").get("temporal-schema") == "service_completed_successfully"
    assert depends_on(search_attribute_service()).get("temporal") == "service_healthy"


def test_dependency_conditions_are_coherent():
    for name in services():
        for target, condition in depends_on(name).items():
            assert target in services(), f"{name} depends on unknown {target}"
            spec = services()[target]
            if condition == "service_healthy":
                healthcheck_text(target)  # must exist and not be disabled
            elif condition == "service_completed_successfully":
                # a one-shot that compose restarts never "completes"
                assert str(spec.get("restart", "no")) in {"no", "on-failure"}, f"{target} restarts"
            else:
                pytest.fail(f"{name} -> {target}: {condition} does not wait for anything useful")


def test_healthchecks():
    for service in ("postgres", "temporal", "api"):
        healthcheck_text(service)
    # the worker serves no HTTP: it must not inherit the image's /healthz check
    assert services()["worker"].get("healthcheck", {}).get("disable") is True


# -- Dockerfile and build context ---------------------------------------------------------------


def test_dockerfile_installs_the_locked_hashes():
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert installs, "no pip install"
    for install in installs:
        words = shlex.split(install)
        assert "--require-hashes" in words, install
        requirement_files = [words[i + 1] for i, w in enumerate(words) if w in ("-r", "--requirement")]
        assert requirement_files and all(Path(f).name == "requirements.lock" for f in requirement_files), install
    assert any(k == "COPY" and "requirements.lock" in a for k, a in dockerfile_instructions())


def test_dockerfile_python_matches_the_project():
    versions = {m for m in re.findall(r"^FROM\s+python:(\d+\.\d+)", dockerfile(), re.M)}
    assert len(versions) == 1, f"one Python for every stage: {versions}"
    version = versions.pop()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(version), (version, requires)
    locked = re.search(r"--python-version[ =](\d+\.\d+)", (ROOT / "requirements.lock").read_text())
    assert locked and locked.group(1) == version, "requirements.lock was resolved for another Python"


def test_dockerfile_runs_the_api_as_a_non_root_user():
    instructions = dockerfile_instructions()
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    cmd = [args for keyword, args in instructions if keyword == "CMD"][-1]
    assert "api:app" in cmd
    healthcheck = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert healthcheck and "/healthz" in healthcheck[-1]
    assert "/healthz" in code_facts()["routes"], "api.py has no /healthz route"


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also covers everything below."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", "")) for p in prefixes):
            ignored = not negate
    return ignored


def test_build_context_ships_the_code_and_nothing_secret():
    needed = ["api.py", "worker.py", "alembic.ini", "requirements.lock", "deploy/seed.py", "migrations/env.py"]
    needed += [
        p.name + "/__init__.py"
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and p.name not in ("tests", "bench")
    ]
    assert not [p for p in needed if dockerignored(p)], "the image would miss code"
    for secret in (".env", ".venv/bin/python", ".git/config", ".data/credentials.key"):
        assert dockerignored(secret), secret
