"""Every public name has a docstring and a place in the API reference the site builds.

The reference pages are written by docs/hooks.py when the site is built; these tests read
the same functions, so a name added to ``probekit.__all__`` is checked without a site build
(``mkdocs build --strict`` in ``make test`` then checks that every block renders).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

import probekit as pk

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _hooks() -> ModuleType:
    pytest.importorskip("mkdocs", reason="the docs tools are in the docs extra")
    spec = importlib.util.spec_from_file_location("probekit_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rendered(hooks: ModuleType) -> dict[str, str]:
    """Each reference page's markdown as the site build sees it (generated parts included)."""
    pages = {}
    for page in sorted((DOCS / "reference").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        writer = hooks.PAGES.get(f"reference/{page.name}")
        pages[page.name] = text.replace(hooks.MARKER, writer()) if writer else text
    return pages


def _documented(pages: dict[str, str]) -> dict[str, str]:
    """Identifier rendered by a ``::: identifier`` block -> the page that renders it."""
    return {
        ident: page
        for page, text in pages.items()
        for ident in re.findall(r"^::: ([\w.]+)", text, re.MULTILINE)
    }


def _home(name: str) -> str:
    """The dotted path of the object ``pk.<name>`` stands for (its defining module + name)."""
    value = getattr(pk, name)
    module = getattr(value, "__module__", None) or type(value).__module__
    return f"{module}.{getattr(value, '__name__', name)}"


@pytest.mark.parametrize("name", [n for n in pk.__all__ if not n.startswith("__")])
def test_every_public_name_has_a_docstring(name):
    doc = inspect.getdoc(getattr(pk, name))
    assert doc and doc.strip(), f"pk.{name} has no docstring"
    if inspect.isclass(getattr(pk, name)):
        # a dataclass without a docstring gets its signature as one: that is not prose
        assert not doc.startswith(f"{name}("), f"pk.{name} has only a generated docstring"


def _missing(names: list[str]) -> list[str]:
    """The names rendered on no reference page (in full: themselves or their whole module)."""
    documented = _documented(_rendered(_hooks()))
    missing = []
    for name in names:
        if name.startswith("__"):
            continue
        home = _home(name)
        if home not in documented and home.rsplit(".", 1)[0] not in documented:
            missing.append(f"pk.{name} ({home}): on no page of docs/reference/")
    return missing


def test_every_public_name_is_in_the_reference():
    missing = _missing(list(pk.__all__))
    assert not missing, "\n".join(missing)


def test_a_name_on_no_page_is_reported(monkeypatch):
    class Unlisted:
        """Defined here, so no reference page renders it."""

    monkeypatch.setattr(pk, "Unlisted", Unlisted, raising=False)
    assert _missing(["Unlisted", "Probe"]) == [
        f"pk.Unlisted ({__name__}.Unlisted): on no page of docs/reference/"
    ]


def test_the_top_level_page_links_what_it_does_not_render():
    hooks = _hooks()
    page = _rendered(hooks)["probekit.md"]
    for name, module in hooks.public_names().items():
        if module and hooks._package(module) in hooks.ELSEWHERE:
            assert f"[`{name}`][{module}.{name}]" in page, f"pk.{name} is not linked"
        elif module:
            assert f"::: {module}.{name}\n" in page, f"pk.{name} is not rendered"


def test_the_version_is_described():
    assert "__version__" in pk.__all__
    assert "`pk.__version__`" in (DOCS / "reference" / "probekit.md").read_text()


def test_every_results_module_has_a_docstring_and_a_block():
    documented = _documented(_rendered(_hooks()))
    for path in sorted((ROOT / "probekit" / "results").glob("[!_]*.py")):
        module = f"probekit.results.{path.stem}"
        assert documented.get(module) == "results.md", f"{module} is not on the results page"
        assert importlib.import_module(module).__doc__, f"{module} has no docstring"


def test_the_nav_lists_pages_that_exist():
    """Pages named in mkdocs.yml exist; notebooks and unlisted guides are added by the hook."""
    hooks = _hooks()
    nav_text = (ROOT / "mkdocs.yml").read_text()
    nav = nav_text[nav_text.index("\nnav:") : nav_text.index("\nhooks:")]
    for page in re.findall(r":\s+([\w/-]+\.md)\s*$", nav, re.MULTILINE):
        assert (DOCS / page).is_file(), f"mkdocs.yml lists docs/{page}, which does not exist"
    notebooks = hooks.notebook_pages()
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert list(notebooks) == on_disk, "every notebook is in the site, in file-name order"
    assert [p.split("/")[1][:3] for p in on_disk] == ["01_", "02_", "03_", "04_", "05_", "06_"]


def test_docs_do_not_point_outside_the_project():
    for page in [*DOCS.rglob("*.md"), ROOT / "mkdocs.yml"]:
        text = page.read_text()
        for word in ("shared/design", "METRICS.md", "RELIABILITY.md"):
            assert word not in text, f"{page} mentions {word}"
