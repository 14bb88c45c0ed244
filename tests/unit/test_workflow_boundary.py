"""workflows/ is deterministic orchestration: it must not import I/O (DESIGN.md, STYLE.md)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("sqlalchemy", "asyncpg", "httpx", "channels", "activities", "infra.db", "infra.models", "aiohttp")


def _workflow_modules() -> list[str]:
    return [
        "workflows." + ".".join(p.relative_to(ROOT / "workflows").with_suffix("").parts)
        for p in sorted((ROOT / "workflows").rglob("*.py"))
        if p.name != "__init__.py"
    ]


def _is_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_no_workflow_source_imports_io():
    offenders = []
    for path in (ROOT / "workflows").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if _is_forbidden(n)]
    assert offenders == []


def test_no_workflow_module_pulls_io_in_transitively():
    modules = _workflow_modules()
    assert modules, "workflows/ has no modules"
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = [m for m in json.loads(out.stdout) if _is_forbidden(m)]
    assert loaded == []


def test_the_check_would_catch_an_offender():
    assert _is_forbidden("sqlalchemy.ext.asyncio") and _is_forbidden("channels.telegram")
    assert not _is_forbidden("domain.contracts") and not _is_forbidden("httpx_like")
