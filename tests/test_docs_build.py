"""The documentation shows a reader its results offline: typeset maths, tutorials with their outputs, uncut code.

Most checks read ``docs/conf.py`` and ``docs/_static`` only; one builds a one-page Sphinx
project with the maths settings of the docs (about a second). When the docs have been built
(``.ci/run`` builds them before the tests) and the build is newer than its configuration and
the notebooks, the built pages are checked too; otherwise those checks are skipped.
"""

from __future__ import annotations

import importlib
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
OFFLINE_MATHJAX = "sphinx-mathjax-offline"  # the extension's module name has dashes


@pytest.fixture(scope="module")
def conf() -> dict:
    """The namespace of docs/conf.py, with the defaults CI uses (no STOCHHOM_DOCS_EXECUTE)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("STOCHHOM_DOCS_EXECUTE", raising=False)
        return runpy.run_path(str(DOCS / "conf.py"))


def _mathjax_package_dir() -> Path:
    pytest.importorskip(OFFLINE_MATHJAX, reason="the docs extra is not installed")
    module = importlib.import_module(OFFLINE_MATHJAX)
    return Path(module.__file__).resolve().parent / "static" / "mathjax"


def test_mathjax_is_served_by_the_build_not_by_a_cdn(conf: dict) -> None:
    assert "sphinx.ext.mathjax" in conf["extensions"]
    assert OFFLINE_MATHJAX in conf["extensions"]
    path = conf["mathjax_path"]
    assert "://" not in path and not path.startswith("/"), f"mathjax_path {path!r} is not a path under _static/"
    assert path.startswith("mathjax/"), "sphinx-mathjax-offline copies MathJax into _static/mathjax/"
    static = _mathjax_package_dir()
    assert (static / path.removeprefix("mathjax/")).is_file()
    # CommonHTML output typesets with MathJax's own web fonts; they must travel with it
    assert list((static / "output" / "chtml" / "fonts" / "woff-v2").glob("MathJax_Main-*.woff"))


def test_a_page_with_maths_loads_mathjax_from_its_own_static_folder(conf: dict, tmp_path: Path) -> None:
    _mathjax_package_dir()
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"extensions = ['sphinx.ext.mathjax', {OFFLINE_MATHJAX!r}]\nmathjax_path = {conf['mathjax_path']!r}\n",
        encoding="utf-8")
    (src / "index.rst").write_text("Maths\n=====\n\nThe volume fraction :math:`p = \\mathbb{E}[I(x)]`.\n",
                                   encoding="utf-8")
    out = tmp_path / "html"
    app = Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html",
                 status=None, warning=None, freshenv=True, warningiserror=True)
    app.build()
    page = (out / "index.html").read_text(encoding="utf-8")
    # (Sphinx appends "?v=<checksum>" when the file is already in the output folder)
    scripts = re.findall(r'<script[^>]*src="([^"?]*mathjax[^"?]*)', page, flags=re.IGNORECASE)
    assert scripts == ["_static/" + conf["mathjax_path"]]
    assert (out / scripts[0]).is_file()


def test_the_tutorials_are_executed_by_the_build(conf: dict) -> None:
    # stored without outputs (tests/test_notebooks.py), they are run by every build, so the
    # pages show the figures and numbers of the current code, never a cached older result
    assert conf["nb_execution_mode"] == "force"
    assert conf["nb_execution_in_temp"] is True  # nothing is written next to the notebooks
    assert conf["nb_execution_raise_on_error"] is True  # a failing notebook fails the build
    assert conf["nb_execution_timeout"] >= 120


def test_long_code_lines_wrap_instead_of_being_cut_off(conf: dict) -> None:
    assert "_static" in conf["html_static_path"]
    css_files = [f if isinstance(f, str) else f[0] for f in conf["html_css_files"]]
    assert "stochhom.css" in css_files
    css = (DOCS / "_static" / "stochhom.css").read_text(encoding="utf-8")
    rule = re.search(r"(^|\n)pre,[^{]*\{([^}]*)\}", css)
    assert rule, "stochhom.css has no rule for pre"
    assert "white-space: pre-wrap" in rule.group(2)
    assert "overflow-wrap: anywhere" in rule.group(2)


def _current_build() -> Path:
    page = HTML / "tutorials" / "notebooks" / "01_quickstart.html"
    if not page.is_file():
        pytest.skip("the docs are not built (docs/_build/html)")
    sources = [DOCS / "conf.py", DOCS / "_static" / "stochhom.css", *NOTEBOOKS]
    if page.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        pytest.skip("docs/_build/html is older than docs/conf.py or the notebooks; rebuild the docs")
    return HTML


def test_the_built_tutorial_pages_show_their_figures() -> None:
    html = _current_build()
    pages = {nb.stem: html / "tutorials" / "notebooks" / f"{nb.stem}.html" for nb in NOTEBOOKS}
    texts = {name: page.read_text(encoding="utf-8") for name, page in pages.items()}
    if not any("cell_output" in text for text in texts.values()):
        pytest.skip("the docs were built without executing the notebooks (STOCHHOM_DOCS_EXECUTE=off)")
    for name, text in texts.items():
        images = re.findall(r'<img[^>]*src="(\.\./\.\./_images/[^"]+\.png)"', text)
        assert images, f"{name}: the page shows no figure"
        assert all((pages[name].parent / src).is_file() for src in images), name
        assert "cell_output" in text, f"{name}: the page shows no output"


def test_the_built_pages_load_mathjax_and_the_stylesheet_locally() -> None:
    html = _current_build()
    page = (html / "theory" / "rve.html").read_text(encoding="utf-8")
    assert re.search(r'<script[^>]*src="\.\./_static/mathjax/tex-chtml\.js(\?v=\w+)?"', page)
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert 'href="../_static/stochhom.css' in page
    for path in html.rglob("*.html"):
        remote = re.findall(r'<script[^>]*src="(?:https?:)?//[^"]*"', path.read_text(encoding="utf-8"))
        assert not remote, f"{path.relative_to(html)} loads {remote}"
