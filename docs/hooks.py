"""Build-time additions to the documentation site (an MkDocs hook module, see mkdocs.yml).

- The reference page of the top-level names is written from ``probekit.__all__`` when the
  site is built, so a name added to the package is documented without editing the page.
- Every notebook in ``notebooks/`` becomes a page (rendered, not executed) of the
  "Notebooks" section, in file-name order.
- A page in ``docs/`` that the navigation does not list joins the end of "Guides".

Nothing here imports torch: the names and their defining modules are read from the package's
lazy table, and the docstrings are read from the source by mkdocstrings.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MARKER = "<!-- written by docs/hooks.py -->"

# Section of the top-level page for each defining package; any other package gets its own.
SECTIONS = {
    "probekit.core": "Models, examples and attribution",
    "probekit.session": "Probing",
    "probekit.widgets": "Widgets",
}
# Names documented in full on their own reference page; the top-level page links to them.
ELSEWHERE = {
    "probekit.results": ("Results", "results.md"),
    "probekit.errors": ("Errors", "errors.md"),
}


def public_names() -> dict[str, str]:
    """``probekit.__all__`` -> the module that defines each name ("" when none is known)."""
    if str(ROOT) not in sys.path:  # document the checkout being built, not an installed copy
        sys.path.insert(0, str(ROOT))
    import probekit

    lazy: dict[str, str] = getattr(probekit, "_LAZY", {})
    return {name: lazy.get(name, "") for name in probekit.__all__}


def results_modules() -> list[str]:
    """Every public module of ``probekit.results``, documented in full on the results page."""
    folder = ROOT / "probekit" / "results"
    return [f"probekit.results.{p.stem}" for p in sorted(folder.glob("[!_]*.py"))]


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def top_level_reference() -> str:
    """The top-level page: one mkdocstrings block per public name, or a link to its page."""
    blocks: dict[str, list[str]] = {}
    links: dict[str, list[str]] = {}
    for name, module in sorted(public_names().items(), key=lambda kv: kv[0].lower()):
        if not module:
            continue  # __version__ and other plain values: described in the page's text
        package = _package(module)
        if package in ELSEWHERE:
            links.setdefault(package, []).append(f"[`{name}`][{module}.{name}]")
            continue
        title = SECTIONS.get(package, package)
        blocks.setdefault(title, []).append(
            f"::: {module}.{name}\n    options:\n      heading_level: 3\n"
        )
    order = [*SECTIONS.values(), *sorted(set(blocks) - set(SECTIONS.values()))]
    parts = [f"## {title}\n\n" + "\n".join(blocks[title]) for title in order if title in blocks]
    for package, (title, page) in ELSEWHERE.items():
        if package in links:
            parts.append(
                f"## {title}\n\nDocumented on [their own page]({page}): "
                + ", ".join(links[package])
                + ".\n"
            )
    return "\n".join(parts)


def results_reference() -> str:
    """The results page: every module of ``probekit.results``, in file-name order."""
    return "\n".join(f"::: {module}\n" for module in results_modules())


def notebook_pages() -> list[str]:
    """The site paths of the notebooks, in file-name order."""
    return [f"notebooks/{p.name}" for p in sorted(NOTEBOOKS.glob("*.ipynb"))]


def _title(page: Path) -> str:
    match = re.search(r"^#\s+(.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1).strip() if match else page.stem


def _listed(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return {p for item in nav for p in _listed(item)}
    if isinstance(nav, dict):
        return {p for value in nav.values() for p in _listed(value)}
    return set()


def on_config(config: Any) -> Any:
    nav = config["nav"]
    listed = _listed(nav)
    docs = Path(config["docs_dir"])
    for section in nav:
        if not isinstance(section, dict):
            continue
        if "Notebooks" in section:
            section["Notebooks"] = notebook_pages()
        if "Guides" in section:
            extra = sorted(
                p.name for p in docs.glob("*.md") if p.name not in listed and p.name != "index.md"
            )
            section["Guides"] += [{_title(docs / name): name} for name in extra]
    return config


@event_priority(100)  # before mkdocs-jupyter, which turns the notebooks into pages
def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for page in notebook_pages():
        files.append(File(page, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


# pages whose marker is replaced by generated reference blocks
PAGES = {
    "reference/probekit.md": top_level_reference,
    "reference/results.md": results_reference,
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    writer = PAGES.get(page.file.src_uri)
    if writer is None:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{page.file.src_uri} lost its marker {MARKER!r}")
    return markdown.replace(MARKER, writer())
