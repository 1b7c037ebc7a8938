"""The reference lives in docs/ as a MkDocs site; the README is its front door.

``mkdocs build --strict`` (mkdocs.yml turns every link, anchor and nav check into a warning) fails
on a broken link between pages, an anchor no heading makes, or a page left out of the nav. The
README is outside the site, so its links are checked here, with GitHub's anchors, which the site's
headings also take.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_the_docs_site_builds_strict_with_every_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,  # a hang, not a slow build: it takes about 1 s
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pages = sorted((REPO / "docs").glob("*.md"))
    assert len(pages) > 1
    for page in pages:
        built = site / ("" if page.stem == "index" else page.stem) / "index.html"
        assert built.is_file(), f"{page.name} was not built"


QUICK_START = (
    "scripts/setup && .venv/bin/sweeps run studies/quickstart.yaml",
    "scripts/setup --dev && .venv/bin/pytest",
)


def _outside_code_blocks(markdown: str) -> str:
    return re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)


def _github_anchors(markdown: str) -> set[str]:
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _outside_code_blocks(markdown), re.MULTILINE):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        suffix = 0
        while (anchor if suffix == 0 else f"{anchor}-{suffix}") in anchors:
            suffix += 1
        anchors.add(anchor if suffix == 0 else f"{anchor}-{suffix}")
    return anchors


def test_every_relative_link_of_the_readme_reaches_a_file_and_its_anchor() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", _outside_code_blocks(readme))
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative
    for link in relative:
        path, _, anchor = link.partition("#")
        target = REPO / path if path else REPO / "README.md"
        assert target.is_file(), f"README links to {link}: no such file"
        if anchor:
            anchors = _github_anchors(target.read_text(encoding="utf-8"))
            assert anchor in anchors, f"README links to {link}: no such heading"


def test_the_readme_is_a_front_door_to_every_page() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for command in QUICK_START:
        assert command in readme
    linked = {link.partition("#")[0] for link in re.findall(r"\]\((docs/[^)\s]+)\)", readme)}
    pages = {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")}
    assert pages - linked == set(), "pages the README never links to"
