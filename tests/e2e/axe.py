"""axe-core (vendored: tests/e2e/vendor/) run in the page under test."""

from __future__ import annotations

from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
FAILING_IMPACTS = ("serious", "critical")


async def assert_accessible(page) -> None:
    """Fails on any serious or critical WCAG violation axe finds, listing each with its elements.

    The script is evaluated through the DevTools protocol, which the page's CSP does not govern."""
    # colours are judged as they rest, not half-way through a fade-in
    await page.evaluate("Promise.all(document.getAnimations().map(animation => animation.finished))")
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE_SOURCE)
    results = await page.evaluate(
        """() => axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
            resultTypes: ["violations"],
        })"""
    )
    failing = [v for v in results["violations"] if v["impact"] in FAILING_IMPACTS]
    assert not failing, f"axe found on {page.url}:\n" + "\n".join(_describe(v) for v in failing)


def _describe(violation: dict) -> str:
    lines = [f"- [{violation['impact']}] {violation['id']}: {violation['help']}"]
    for node in violation["nodes"][:5]:
        lines.append(f"    at {' '.join(node['target'])}: {node['failureSummary'].splitlines()[-1].strip()}")
    if len(violation["nodes"]) > 5:
        lines.append(f"    ... and {len(violation['nodes']) - 5} more")
    return "\n".join(lines)
