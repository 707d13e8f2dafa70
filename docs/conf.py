"""Sphinx configuration of the stochhom documentation.

Build (warnings are errors, as in CI)::

    .venv/bin/sphinx-build -W --keep-going -E -q -b html docs docs/_build/html

Markdown pages and the notebooks of ``notebooks/`` are read by myst-nb.

Tutorials with their results
    The notebooks are stored without outputs (``tests/test_notebooks.py`` checks
    that) and are executed by this build, at their full sizes, so that the tutorial
    pages show the figures and the printed numbers of the current code
    (``nb_execution_mode = "force"``: never a cached result of older code). The four
    notebooks take about 70 s on 2 cores. Each runs in a temporary directory, so
    nothing is written next to the notebooks; a cell that fails, or runs longer
    than ``nb_execution_timeout``, fails the build. To iterate on the prose, set
    ``STOCHHOM_DOCS_EXECUTE=off`` (pages without outputs) or ``cache`` (reuse
    ``docs/_build/.jupyter_cache``); ``STOCHHOM_NB_SMALL=1`` runs them at the tiny
    sizes of the tests. CI sets neither.

Maths offline
    ``sphinx-mathjax-offline`` (the ``docs`` extra) copies MathJax 3 into
    ``_static/mathjax/`` of the build, and ``mathjax_path`` points there, so the
    pages typeset their maths without network (no CDN). The build itself needs no
    network either: intersphinx is not used.

No clipped code
    ``_static/stochhom.css`` wraps long lines of code blocks and notebook cells
    (inputs and outputs) instead of cutting them off at the edge of the column.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from typing import ClassVar

import stochhom

DOCS = Path(__file__).resolve().parent

# -- project -------------------------------------------------------------------------

project = "stochhom"
author = "stochhom developers"
copyright = "stochhom developers"
release = stochhom.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ----------------------------------------------------------------------

extensions = [
    "myst_nb",  # Markdown (MyST) pages and .ipynb notebooks; it sets up myst_parser itself
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 in _static/mathjax/ of the build; the name has dashes
    "sphinx.ext.viewcode",
]
# No sphinx.ext.intersphinx: the build machines have no network, and an inventory
# fetch that fails is a warning (an error under -W).

exclude_patterns = [
    "_build",
    "**/.ipynb_checkpoints",
    # docs/tutorials/notebooks is a link to ../notebooks: only the numbered
    # notebooks are pages (a README or helper files there are not).
    "tutorials/notebooks/*.md",
    "tutorials/notebooks/*.rst",
    "tutorials/notebooks/**/*",
]

# -- MyST / myst-nb --------------------------------------------------------------------

myst_enable_extensions = [
    "amsmath",  # \begin{align} ... in $$ blocks
    "colon_fence",  # ::: fenced directives
    "deflist",
    "dollarmath",  # $inline$ and $$display$$ math, rendered by MathJax
]
myst_heading_anchors = 3  # [text](page.md#a-section-title) links to h1-h3 headings

# The notebooks are stored without outputs and run here, at full size, on every build
# (see the module docstring); STOCHHOM_DOCS_EXECUTE=off|cache is for local iteration.
nb_execution_mode = os.environ.get("STOCHHOM_DOCS_EXECUTE", "force")
nb_execution_timeout = 600  # seconds per cell; the longest cell takes about 20 s
nb_execution_in_temp = True  # as in the tests: the working directory is a temporary one
nb_execution_raise_on_error = True  # a failing notebook stops the build, with its traceback
nb_execution_show_tb = True
nb_merge_streams = True

# -- MathJax, served by the build itself -------------------------------------------------

# sphinx-mathjax-offline copies MathJax into _static/mathjax/ at the end of the build;
# this path is relative to _static/, so no page loads MathJax from a CDN.
mathjax_path = "mathjax/tex-chtml.js"

# -- autodoc / autosummary / napoleon -----------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": True}
autosummary_generate = False  # the API pages are written by hand (docs/api/), no generated stubs

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = False

# Unresolved cross-references (third-party types in signatures, names in type
# descriptions such as "array_like") are not warnings; a broken reference to a
# documented stochhom name is resolved by ``_resolve_alias`` below.
nitpicky = False

# -- warnings ----------------------------------------------------------------------------

suppress_warnings: list[str] = []  # nothing is suppressed by type; see KNOWN_DOCSTRING_WARNINGS

NOTEBOOKS = DOCS / "tutorials" / "notebooks"  # a link to ../notebooks

# Known formatting problems of a few stochhom docstrings, to be fixed in the
# docstrings themselves (then delete the entry): (object whose docstring it is,
# start of the docutils message). Only these messages from these docstrings are
# dropped; every other warning, from any docstring or page, still fails the build.
KNOWN_DOCSTRING_WARNINGS: list[tuple[str, str]] = []  # all fixed in the docstrings

# -- HTML --------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"stochhom {release}"
html_show_sourcelink = False
html_copy_source = False  # no _sources/ copies of the pages
html_theme_options = {"navigation_with_keys": True}
html_static_path = ["_static"]
html_css_files = ["stochhom.css"]  # long code lines wrap instead of being cut off
pygments_style = "sphinx"
pygments_dark_style = "monokai"


# -- resolving re-exported names ------------------------------------------------------------
#
# Every object is documented once, under the name users import it by (for example
# ``stochhom.spectral.homogenize``). The same object is reachable under other
# names (``stochhom.homogenize``, ``stochhom.spectral.homogenize.homogenize``), and
# docstrings use all of them. A reference to such a name, which Sphinx cannot find,
# is sent to the object's documented entry here, by identity of the Python object.


def _import_dotted(name: str):
    """The object a dotted name refers to, or None.

    Attribute access first (``stochhom.spectral.homogenize`` is the function that the
    package re-exports, not the module of that name), then the longest importable
    module prefix.
    """
    parts = name.split(".")
    try:
        obj = importlib.import_module(parts[0])
        for attr in parts[1:]:
            obj = getattr(obj, attr)
        return obj
    except (ImportError, AttributeError):
        pass
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


_ALIAS_MAP: dict[int, str] = {}


def _documented_by_object(env) -> dict[int, str]:
    if _ALIAS_MAP:
        return _ALIAS_MAP
    out: dict[int, str] = {}
    for name, entry in env.get_domain("py").objects.items():
        if entry.aliased or not name.startswith("stochhom"):
            continue
        obj = _import_dotted(name)
        if obj is None or isinstance(obj, (int, float, str, bytes, tuple, bool)):
            continue  # constants have no identity worth matching
        if inspect.ismodule(obj):
            continue
        out.setdefault(id(obj), name)
    _ALIAS_MAP.update(out)
    return _ALIAS_MAP


def _resolve_alias(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    candidates = []
    if not target.startswith("stochhom"):
        modname = node.get("py:module")
        clsname = node.get("py:class")
        if modname and clsname:
            # a short name in a class docstring: also look in the module defining the class
            owner = _import_dotted(f"{modname}.{clsname}")
            if getattr(owner, "__module__", None):
                candidates.append(f"{owner.__module__}.{target}")
        if modname:
            candidates.append(f"{modname}.{target}")
    candidates.append(target)
    documented_names = _documented_by_object(env)
    for cand in candidates:
        if not cand.startswith("stochhom"):
            continue
        obj = _import_dotted(cand)
        if obj is None or inspect.ismodule(obj):
            continue
        documented = documented_names.get(id(obj))
        if documented is None or documented == target:
            continue
        return _refnode(app, env, node, contnode, documented)
    if "." not in target and not target.startswith("_"):
        # a short name from another module of stochhom ("see :func:`degradation`"):
        # link it when exactly one documented stochhom object has that name
        matches = {n for n in documented_names.values() if n.rsplit(".", 1)[-1] == target}
        if len(matches) == 1:
            return _refnode(app, env, node, contnode, matches.pop())
    return None


def _refnode(app, env, node, contnode, documented: str):
    from sphinx.util.nodes import make_refnode

    entry = env.get_domain("py").objects[documented]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, documented)


def _reset_alias_map(app, env, *args):
    _ALIAS_MAP.clear()  # the documented names are known once every page is read


# -- API pages: members that are not stochhom's ---------------------------------------------


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn adds set_fit_request, set_predict_request, ... (metadata routing) to
    # every estimator and splitter class; they are scikit-learn's API, documented there,
    # and their docstrings refer to scikit-learn's glossary.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _numpydoc_attributes(app) -> None:
    """Leave the docstrings of properties, attributes and data to autodoc, not napoleon.

    napoleon reads the first line of such a docstring as Google's inline
    ``type: description`` whenever it holds a colon, so ``"Shape of the spectrum: the
    last axis is ..."`` would render as a type "Shape of the spectrum". numpydoc has no
    such rule, and these docstrings have no sections for napoleon to convert.
    """
    from sphinx.ext.napoleon import _process_docstring

    def process(app, what, name, obj, options, lines):
        if what not in {"attribute", "data", "property"}:
            _process_docstring(app, what, name, obj, options, lines)

    for listener in list(app.events.listeners.get("autodoc-process-docstring", [])):
        if listener.handler is _process_docstring:
            app.disconnect(listener.id)
            app.connect("autodoc-process-docstring", process, priority=listener.priority)


class _KnownDocstringWarnings:
    """Logging filter that drops the warnings listed in KNOWN_DOCSTRING_WARNINGS."""

    def filter(self, record) -> bool:
        location = str(getattr(record, "location", "") or "")
        message = str(record.msg)
        for obj, start in KNOWN_DOCSTRING_WARNINGS:
            if f"docstring of {obj}:" in location and message.startswith(start):
                return False
        return True


def _install_warning_filter() -> None:
    import logging

    from sphinx.util.logging import NAMESPACE, WarningStreamHandler

    for handler in logging.getLogger(NAMESPACE).handlers:
        if isinstance(handler, WarningStreamHandler):
            # first, so that a dropped warning is neither counted nor raised
            handler.filters.insert(0, _KnownDocstringWarnings())


# -- API pages: submodules ------------------------------------------------------------------


def _submodule_members(modname: str) -> list[str]:
    """Public names of a submodule that its package page does not document.

    The package page documents the classes and functions the package re-exports
    (``automodule:: pkg :members:``); the submodule documents the rest of its
    ``__all__``: its own other classes and functions, and every constant (a constant's
    ``#:`` comment is in the module that defines it, so only that module's page can
    show it). Names imported from elsewhere (errors, helpers) are left to their home.
    """
    mod = importlib.import_module(modname)
    pkg = importlib.import_module(modname.rpartition(".")[0])
    reexported = {id(getattr(pkg, n, None)) for n in getattr(pkg, "__all__", [])}
    names = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if inspect.ismodule(obj):
            continue
        if inspect.isclass(obj) or inspect.isroutine(obj):
            if getattr(obj, "__module__", modname) != modname or id(obj) in reexported:
                continue
        names.append(name)
    return names


def _submodule_directive():
    from docutils import nodes
    from docutils.parsers.rst import directives
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class StochhomSubmodule(SphinxDirective):
        """``.. stochhom-submodule:: pkg.mod``: the module's docstring and the members of
        :func:`_submodule_members` (every name of its ``__all__`` with ``:all:``, none
        with ``:no-members:``)."""

        required_arguments = 1
        option_spec: ClassVar[dict] = {"all": directives.flag, "no-members": directives.flag}

        def run(self):
            modname = self.arguments[0]
            if "no-members" in self.options:
                members = []
            elif "all" in self.options:
                members = list(importlib.import_module(modname).__all__)
            else:
                members = _submodule_members(modname)
            lines = [f".. automodule:: {modname}"]
            if members:
                lines.append("   :members: " + ", ".join(members))
            # One container around the output: section titles inside module docstrings
            # ("Concept", ...) then stay local to the page, instead of becoming global
            # labels that clash between modules (MyST registers the names of top-level
            # nodes of an eval-rst block as explicit targets).
            container = nodes.container(classes=["stochhom-submodule"])
            self.state.nested_parse(StringList(lines, source=""), self.content_offset, container)
            return [container]

    return StochhomSubmodule


# -- CLI reference: the parser's own help -------------------------------------------------


def _cli_help_directive():
    import argparse
    import os

    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    class StochhomCliHelp(SphinxDirective):
        """``.. stochhom-cli-help:: [COMMAND]``: the ``--help`` text of ``stochhom`` (or of
        one command), from :func:`stochhom.cli.build_parser`, so the reference cannot
        drift from the code."""

        optional_arguments = 1

        def run(self):
            from stochhom.cli import build_parser

            parser = build_parser()
            if self.arguments:
                sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
                parser = sub.choices[self.arguments[0]]
            old = os.environ.get("COLUMNS")
            os.environ["COLUMNS"] = "88"  # the same line breaks on every machine
            try:
                text = parser.format_help()
            finally:
                if old is None:
                    del os.environ["COLUMNS"]
                else:
                    os.environ["COLUMNS"] = old
            block = nodes.literal_block(text, text)
            block["language"] = "text"
            return [block]

    return StochhomCliHelp


# -- tutorials: the notebooks may not exist yet --------------------------------------------

_NOTEBOOK_TOCTREE = """```{toctree}
:glob:
:maxdepth: 1

notebooks/[0-9]*
```"""


def _tutorials_without_notebooks(app, docname, source):
    # The tutorials toctree globs the numbered notebooks of notebooks/. In a checkout
    # without them the glob would match nothing, which Sphinx reports (and, in
    # Sphinx 9.0, its suppress_warnings entry toc.empty_glob does not catch), so the
    # toctree is replaced by a note. With any notebook present the page is unchanged.
    if docname != "tutorials/index" or any(NOTEBOOKS.glob("[0-9]*.ipynb")):
        return
    note = "```{note}\nThis build found no notebooks in `notebooks/`.\n```"
    source[0] = source[0].replace(_NOTEBOOK_TOCTREE, note)


def _reread_tutorials(app, env, added, changed, removed):
    # the page depends on which notebooks exist, not only on its own source
    return ["tutorials/index"] if "tutorials/index" in env.found_docs else []


def _notebook_kernel_environment(app, config):
    # The notebook kernels inherit this process's environment. A non-interactive
    # MPLBACKEND (Agg, set by some CI images) would stop the kernel's inline backend
    # from displaying the figures, so the pages would show none.
    if config.nb_execution_mode != "off":
        os.environ.pop("MPLBACKEND", None)


def setup(app):
    app.connect("config-inited", _notebook_kernel_environment)
    app.add_directive("stochhom-submodule", _submodule_directive())
    app.add_directive("stochhom-cli-help", _cli_help_directive())
    app.connect("source-read", _tutorials_without_notebooks)
    app.connect("env-get-outdated", _reread_tutorials)
    app.connect("missing-reference", _resolve_alias)
    app.connect("env-updated", _reset_alias_map)
    app.connect("autodoc-skip-member", _skip_member)
    _numpydoc_attributes(app)
    _install_warning_filter()
