"""Pages load only what we serve: every src/href in templates and url() in CSS is on our own
origin, every /static file they name exists, nothing names a CDN, and the vendored files are
the ones their README pins."""

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
WEB = ROOT / "web"
TEMPLATES = sorted((WEB / "templates").rglob("*.html"))
OWN_CSS_JS = [WEB / "static" / "cabinet.css", WEB / "static" / "cabinet.js"]
ATTRIBUTE = re.compile(r"""\b(?:src|href|action|hx-get|hx-post|sse-connect)\s*=\s*["']([^"']*)["']""")
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)|@import\s+["']([^"']+)""")
ANY_URL = re.compile(r"""(?:https?:)?//[\w.-]+\.[a-z]{2,}""", re.IGNORECASE)
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}  # an XML namespace, never fetched


def _references() -> list[tuple[Path, str]]:
    found = [(path, m.group(1)) for path in TEMPLATES for m in ATTRIBUTE.finditer(path.read_text())]
    for path in OWN_CSS_JS:
        found += [(path, m.group(1) or m.group(2)) for m in CSS_URL.finditer(path.read_text())]
    return found


def test_templates_reference_something():
    values = {value for _, value in _references()}
    assert {"/static/cabinet.css", "/static/vendor/htmx/htmx.min.js", "/login"} <= values


def test_every_reference_stays_on_our_origin():
    foreign = [
        f"{path.relative_to(ROOT)}: {value}"
        for path, value in _references()
        if not (value.startswith(("/", "#", "?", "{{", "data:")) and not value.startswith("//"))
    ]
    assert not foreign, foreign


def test_every_static_file_referenced_exists():
    missing = [
        f"{path.relative_to(ROOT)}: {value}"
        for path, value in _references()
        if value.startswith("/static/") and not (WEB / value.lstrip("/").split("?")[0]).is_file()
    ]
    assert not missing, missing


def test_no_other_host_is_named_in_templates_styles_or_scripts():
    named = [
        f"{path.relative_to(ROOT)}: {m.group(0)}"
        for path in [*TEMPLATES, *OWN_CSS_JS]
        for m in ANY_URL.finditer(path.read_text())
        if not any(allowed.startswith(m.group(0)) for allowed in ALLOWED_URLS)
    ]
    assert not named, named


VENDOR_READMES = [WEB / "static" / "vendor" / "README.md", ROOT / "tests" / "e2e" / "vendor" / "README.md"]
# beside each vendored file: its package's licence texts, and the README itself
NOT_ASSETS = re.compile(r"(^|\.)(LICENSE|NOTICE)(-3RD-PARTY)?(\.txt)?$|^README\.md$")


def _pinned(readme: Path) -> list[tuple[str, str]]:
    return re.findall(r"^([0-9a-f]{64})  (\S+)$", readme.read_text(), re.MULTILINE)


@pytest.mark.parametrize("readme", VENDOR_READMES)
def test_vendored_files_match_the_hashes_their_readme_pins(readme):
    pinned = _pinned(readme)
    assert pinned
    for digest, name in pinned:
        assert hashlib.sha256((readme.parent / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("readme", VENDOR_READMES)
def test_every_vendored_file_is_pinned(readme):
    """The cabinet's htmx and the API docs' Swagger UI and ReDoc alike: nothing served unlisted."""
    folder = readme.parent
    present = {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not NOT_ASSETS.search(path.name)
    }
    assert present == {name for _, name in _pinned(readme)}
