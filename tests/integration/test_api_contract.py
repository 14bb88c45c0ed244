"""Contract test: schemathesis generates requests from our own OpenAPI schema and sends them to
the api over HTTP, with a real token and real rows in PostgreSQL. No answer may be a 5xx or
differ from what the schema says (status, content type, headers, body).

Bounded for `make test`: a fixed seed, deterministic generation and a few examples per operation;
path ids are drawn from the rows that exist half the time, so the happy paths run too. The
figures (operations, cases) are printed and checked to be non-trivial."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from api import create_app
from tests.conftest import TMP, LiveServer
from tests.integration.api_support import make_scene

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
    ]
)


@pytest.fixture
def roomy_api(app_settings):
    """The app with a budget no generated burst exhausts: every case reaches its route."""
    roomy = {"api_rate_per_second": 10_000, "api_rate_burst": 10_000, "api_auth_failure_burst": 10_000}
    server = LiveServer(create_app(app_settings.model_copy(update=roomy)))
    yield server.start()
    server.stop()


async def test_the_api_keeps_its_own_openapi_contract(roomy_api, clean_db):
    scene = await make_scene(clean_db)
    folder = TMP / "schemathesis"
    folder.mkdir(parents=True, exist_ok=True)
    conversations = [scene.my_pool, scene.my_assigned, scene.other_pool, scene.other_assigned, scene.unrouted]
    config = folder / "schemathesis.toml"
    config.write_text(
        "\n".join(
            [
                "[dictionaries.conversations]",
                f"values = {json.dumps(conversations)}",
                "[dictionaries.contacts]",
                f"values = {json.dumps(sorted(scene.contacts.values()))}",
                "[parameters]",
                '"path.conversation_id" = { dictionary = "conversations", probability = 0.5 }',
                '"path.contact_id" = { dictionary = "contacts", probability = 0.5 }',
            ]
        )
    )
    junit = folder / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{roomy_api.url}/openapi.json",
        "--include-path-regex",
        "^/api/v1/",
        "--header",
        f"Authorization: Bearer {scene.everything}",
        "--checks",
        CHECKS,
        "--max-examples",
        "12",
        "--seed",
        "20261126",
        "--generation-deterministic",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
    ]
    env = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false"}
    done = await asyncio.to_thread(
        subprocess.run, command, cwd=folder, env=env, capture_output=True, text=True, timeout=110
    )
    (folder / "output.txt").write_text(done.stdout + done.stderr)
    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    print(summary)
    assert done.returncode == 0, f"see {folder / 'output.txt'}\n{summary}{done.stderr[-2000:]}"
    operations = len(ET.parse(junit).getroot().findall(".//testcase"))
    generated = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert operations >= 15 and generated and int(generated[1]) >= 500, summary
    print(f"schemathesis: {operations} operations, {generated[1]} cases, all passed")


# what integrators and monitors call; everything else the app serves is a page or a page's part
SCHEMA_PATHS = re.compile(r"^/api/v1/|^/webhooks/\{channel\}/\{inbox_id\}$|^/(healthz|readyz)$")


def test_the_schema_lists_the_api_and_no_page(app_settings):
    schema = create_app(app_settings).openapi()
    paths = schema["paths"]
    assert not [path for path in paths if not SCHEMA_PATHS.match(path)]
    html = [
        (method, path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        for answer in operation.get("responses", {}).values()
        if "text/html" in answer.get("content", {})
    ]
    assert html == []
    assert sum(path.startswith("/api/v1/") for path in paths) >= 15
