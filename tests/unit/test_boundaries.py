"""Which package may import which (DESIGN.md "Top level"): web/api -> services -> infra/domain;
activities -> services, infra, channels, integrations, domain; channels and integrations -> domain and
themselves; workflows ->
domain only, and only worker.py (and workflow tests) import workflows; infra is plumbing and
imports none of the packages above it; nothing in the application imports setup."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPLICATION = (
    "api",
    "worker",
    "web",
    "services",
    "infra",
    "domain",
    "channels",
    "integrations",
    "activities",
    "workflows",
)
SKIP = {".venv", ".pytest-tmp", ".data", ".git", "node_modules"}
FORBIDDEN_IN_WORKFLOWS = (
    "sqlalchemy",
    "asyncpg",
    "httpx",
    "channels",
    "integrations",
    "activities",
    "infra",
    "services",
    "aiohttp",
)


def _modules() -> dict[str, Path]:
    """Every Python module of the repository by dotted name."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if SKIP.intersection(parts):
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Absolute imports anywhere in the file, function bodies included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _offenders(importers: tuple[str, ...], forbidden: tuple[str, ...], *, unless: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if _within(module, *importers) and not _within(module, *unless)
        for name in _imports(path)
        if _within(name, *forbidden)
    )


def test_only_the_worker_and_workflow_tests_import_workflows():
    importers = tuple(m for m in MODULES if m.split(".")[0] != "workflows")
    assert _offenders(importers, ("workflows",), unless=("worker", "tests.workflows")) == []


def test_infra_is_plumbing():
    assert (
        _offenders(
            ("infra",),
            ("services", "web", "activities", "channels", "integrations", "workflows", "setup", "api", "worker"),
        )
        == []
    )


def test_services_stay_below_the_edges():
    assert _offenders(("services",), ("web", "activities", "integrations", "workflows", "setup", "api", "worker")) == []


def test_web_and_api_go_through_services_not_activities_or_workflows():
    assert _offenders(("web", "api"), ("activities", "integrations", "workflows", "setup", "worker")) == []


def test_activities_do_not_reach_up_to_the_web():
    assert _offenders(("activities",), ("web", "workflows", "setup", "api", "worker")) == []


def test_channels_import_only_domain_their_own_package_httpx_and_pydantic():
    # pydantic, as in domain: parsers read provider JSON through typed models (channels/payload.py)
    allowed = ("channels", "domain", "httpx", "pydantic", *sys.stdlib_module_names)
    offenders = [
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if _within(module, "channels")
        for name in _imports(path)
        if not _within(name, *allowed)
    ]
    assert offenders == []


def test_integrations_import_only_domain_their_own_package_and_http_clients():
    allowed = ("integrations", "domain", "httpx", "aiohttp", *sys.stdlib_module_names)
    offenders = [
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if _within(module, "integrations")
        for name in _imports(path)
        if not _within(name, *allowed)
    ]
    assert offenders == []


def test_domain_is_pure():
    # pydantic_core: the custom validation error that carries a msgid (domain/wording.py)
    allowed = ("domain", "pydantic", "pydantic_core", "temporalio.common", *sys.stdlib_module_names)
    offenders = [
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if _within(module, "domain")
        for name in _imports(path)
        if not _within(name, *allowed)
    ]
    assert offenders == []


def test_the_application_never_imports_setup():
    assert _offenders(APPLICATION, ("setup",)) == []


def test_no_workflow_source_imports_io():
    """Workflows import only domain, temporalio, pydantic and the standard library."""
    allowed = ("workflows", "domain", "temporalio", "pydantic", *sys.stdlib_module_names)
    offenders = [
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if _within(module, "workflows")
        for name in _imports(path)
        if not _within(name, *allowed) or _within(name, *FORBIDDEN_IN_WORKFLOWS)
    ]
    assert offenders == []


def test_no_workflow_module_pulls_io_in_transitively():
    modules = sorted(m for m in MODULES if _within(m, "workflows") and m != "workflows")
    assert modules, "workflows/ has no modules"
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert [m for m in json.loads(out.stdout) if _within(m, *FORBIDDEN_IN_WORKFLOWS)] == []


def test_the_checks_would_catch_an_offender(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef later():\n    from workflows.delivery import DeliveryWorkflow\n")
    assert _imports(bad) == {"os", "workflows.delivery"}
    assert _within("workflows.delivery", "workflows") and not _within("workflows_like", "workflows")
    assert {"infra.settings", "services.ingest", "setup.devstack", "channels.base", "worker"} <= set(MODULES)
    assert _offenders(("services",), ("infra",)) != []  # services do import infra: the scan sees it
