"""The reference lives in docs/ as a MkDocs site; the README is its front door.

``mkdocs build --strict`` (mkdocs.yml turns every link, anchor and nav check into a warning) fails
on a broken link between pages, an anchor no heading makes, or a page left out of the nav.
"""

from __future__ import annotations

import os
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
