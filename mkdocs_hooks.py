"""mkdocs hooks: the pages in docs/ read on GitHub as they are; two things change for the site.

* A code fence's test options (``console fixture:terminal``, ``python notest``: pytest-markdown-docs
  reads them, see conftest.py) are dropped, leaving the language for highlighting.
* A link to a file of the repository outside docs/ (``../examples/handler.py``) points at a copy of
  that file published with the site, since the site has no parent directory to reach into.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

FENCE = re.compile(r"^(?P<open>[ \t]*`{3,})(?P<lang>[\w+-]+)[ \t]+\S[^\n]*$", re.MULTILINE)
LINK = re.compile(r"\]\((?P<target>\.\./[^)#\s]+)(?P<anchor>#[^)\s]*)?\)")


def _outside(page_uri: str, target: str, docs: Path) -> str | None:
    """The repository path a relative link from a page leads to, when that is a file outside docs/."""
    base = posixpath.dirname(page_uri)
    joined = posixpath.normpath(posixpath.join("docs", base, target))
    if joined.startswith(("docs/", "../")) or joined.endswith(".md") or not (docs.parent / joined).is_file():
        return None  # inside docs/ (mkdocs checks it), a page of its own, or nothing at all
    return joined


def on_files(files: Any, config: Any) -> Any:
    """Publish with the site every repository file the pages link to outside docs/."""
    from mkdocs.structure.files import File

    docs = Path(config["docs_dir"])
    wanted: set[str] = set()
    for file in files.documentation_pages():
        text = Path(file.abs_src_path).read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            path = _outside(file.src_uri, match["target"], docs)
            if path is not None:
                wanted.add(path)
    for path in sorted(wanted):
        files.append(File.generated(config, path, abs_src_path=str(docs.parent / path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Drop the fences' test options; point links outside docs/ at the published copies."""
    docs = Path(config["docs_dir"])
    markdown = FENCE.sub(lambda m: f"{m['open']}{m['lang']}", markdown)

    def relink(match: re.Match[str]) -> str:
        path = _outside(page.file.src_uri, match["target"], docs)
        if path is None:
            return match[0]
        here = posixpath.dirname(page.file.src_uri) or "."
        return f"]({posixpath.relpath(path, here)}{match['anchor'] or ''})"

    return LINK.sub(relink, markdown)
