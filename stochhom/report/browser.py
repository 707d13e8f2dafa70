"""Check, screenshot and print an HTML page in headless Chromium.

Why a browser: whether a table cell overflows, a caption runs out of its card, a
figure's labels shrink below a readable size or a script fails is decided by the
layout engine, fonts and JavaScript of a real browser. Parsing the HTML, or reasoning
about the CSS, can only guess at it; a real browser is the only honest check of layout.
This module drives the ``chromium`` executable as a subprocess in headless mode; it needs
no Python dependency (no Playwright, Selenium or DevTools client).

How a page is measured (:func:`check_page`): the page is copied to a temporary file with
one ``<script>`` inserted first in ``<head>`` (on the same line, so that the line numbers
of the page's own scripts are unchanged). The script records JavaScript errors
(``error``, ``unhandledrejection`` and ``console.error``), and on ``load`` waits for every
image, opens every ``<details>`` (a reader opens them too), lets the layout settle, measures
the DOM and writes the result as JSON into a hidden ``<pre id="stochhom-check">`` appended
to ``<body>``. Chromium runs with ``--dump-dom`` and ``--virtual-time-budget``: the budget
is what makes the dump wait for timers started after ``load`` (without it, ``--dump-dom``
serializes the DOM as soon as ``load`` has been dispatched, before any ``setTimeout``
callback). Virtual time runs as fast as the page lets it, so the budget (10 s of page
time) costs well under a second of wall time on a static page.

Every Chromium run has a wall-clock ``timeout``, runs in its own process group (killed as a
whole on timeout), and uses a temporary profile directory that is removed afterwards.

Notes
-----
Chromium is found by :func:`find_chromium`: the environment variable
``STOCHHOM_CHROMIUM`` (a path or a command), else ``chromium``, ``chromium-browser`` or
``google-chrome`` on ``PATH``. On Debian and Ubuntu images: ``apt-get install chromium``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, StochhomError

__all__ = [
    "PageCheck",
    "find_chromium",
    "check_page",
    "screenshot",
    "print_pdf",
    "CHROMIUM_ENV",
    "MIN_FIGURE_FONT_PX",
]

#: Environment variable naming the browser executable (a path, or a command on ``PATH``).
CHROMIUM_ENV = "STOCHHOM_CHROMIUM"

#: Smallest font size (CSS px) a figure may render its text at before :class:`PageCheck`
#: reports it as too small.
MIN_FIGURE_FONT_PX = 10.0

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")

#: Flags of every run: headless, no sandbox (containers run as root), no GPU, no network
#: chatter, no first-run or sync machinery, shared memory in /tmp (a container's /dev/shm
#: is often 64 MB).
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
)

#: Page time (ms) Chromium lets pass before it dumps, screenshots or prints the page.
_VIRTUAL_TIME_MS = 10_000
#: Page time (ms) the check waits, after ``load`` and after opening ``<details>``, for images.
_IMAGE_WAIT_MS = 3_000
#: Page time (ms) the check lets the layout settle before measuring.
_SETTLE_MS = 200

_RESULT_ID = "stochhom-check"

# The injected script. No comment and every statement ends with ";": it is joined into one
# line (see _script), so that the page's line numbers in error messages do not move.
_CHECK_JS = """
(function () {
  "use strict";
  var OPEN_DETAILS = __OPEN_DETAILS__;
  var errors = [];
  function text(x) {
    try {
      if (x && typeof x === "object" && "message" in x) { return String(x.message); }
      return String(x);
    } catch (e) { return "(unprintable value)"; }
  }
  function squash(s, n) {
    s = String(s || "").replace(/\\s+/g, " ").trim();
    return s.length > n ? s.slice(0, n) : s;
  }
  window.addEventListener("error", function (ev) {
    if (!(ev instanceof ErrorEvent)) { return; }
    var where = ev.lineno ? " (line " + ev.lineno + ")" : "";
    errors.push((ev.message || text(ev.error)) + where);
  });
  window.addEventListener("unhandledrejection", function (ev) {
    errors.push("Unhandled promise rejection: " + text(ev.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    var parts = [];
    for (var i = 0; i < arguments.length; i++) { parts.push(text(arguments[i])); }
    errors.push("console.error: " + parts.join(" "));
    return consoleError.apply(console, arguments);
  };
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }
  function imagesReady() {
    var waits = Array.prototype.map.call(document.images, function (img) {
      if (img.loading === "lazy") { img.loading = "eager"; }
      if (img.complete) { return Promise.resolve(); }
      return img.decode().then(function () {}, function () {});
    });
    return Promise.race([Promise.all(waits), sleep(__IMAGE_WAIT_MS__)]);
  }
  function measure(documentHeight) {
    var root = document.documentElement;
    var out = {
      title: document.title,
      js_errors: errors.slice(),
      images: document.images.length,
      broken_images: [],
      first_section_id: null,
      overflowing: [],
      figure_fonts: [],
      page_scroll_width: root.scrollWidth,
      viewport_width: root.clientWidth,
      document_height: documentHeight
    };
    Array.prototype.forEach.call(document.images, function (img) {
      if (!img.complete || img.naturalWidth === 0) {
        out.broken_images.push({src: String(img.getAttribute("src") || "").slice(0, 80),
                                alt: img.getAttribute("alt") || ""});
      }
      var width = parseFloat(img.getAttribute("width"));
      var font = parseFloat(img.getAttribute("data-min-font-px"));
      if (img.hasAttribute("width") && img.hasAttribute("data-min-font-px") && width > 0 && font > 0
          && img.clientWidth > 0) {
        out.figure_fonts.push({alt: img.getAttribute("alt") || "", px: font * img.clientWidth / width,
                               data_min_font_px: font, width: width, client_width: img.clientWidth});
      }
    });
    var section = document.querySelector("main section") || document.querySelector("section");
    if (section) { out.first_section_id = section.id || null; }
    document.querySelectorAll("td, th, figcaption, .card, .answer").forEach(function (el) {
      if (el.scrollWidth > el.clientWidth + 1) {
        out.overflowing.push({tag: el.tagName.toLowerCase(), text: squash(el.textContent, 60),
                              scrollWidth: el.scrollWidth, clientWidth: el.clientWidth});
      }
    });
    return out;
  }
  function report(result) {
    var pre = document.createElement("pre");
    pre.id = "__RESULT_ID__";
    pre.hidden = true;
    pre.textContent = JSON.stringify(result);
    (document.body || document.documentElement).appendChild(pre);
  }
  window.addEventListener("load", function () {
    var height = 0;
    imagesReady().then(function () { return sleep(__SETTLE_MS__); }).then(function () {
      var root = document.documentElement;
      height = Math.max(root.scrollHeight, document.body ? document.body.scrollHeight : 0);
      if (!OPEN_DETAILS) { return null; }
      document.querySelectorAll("details").forEach(function (d) { d.open = true; });
      return imagesReady().then(function () { return sleep(__SETTLE_MS__); });
    }).then(function () {
      report(measure(height));
    }).catch(function (e) {
      report({check_error: text(e)});
    });
  });
})();
"""


def _script(open_details: bool) -> str:
    """The check script as one ``<script>`` element on one line."""
    body = _CHECK_JS
    for key, value in {
        "__OPEN_DETAILS__": json.dumps(bool(open_details)),
        "__IMAGE_WAIT_MS__": str(_IMAGE_WAIT_MS),
        "__SETTLE_MS__": str(_SETTLE_MS),
        "__RESULT_ID__": _RESULT_ID,
    }.items():
        body = body.replace(key, value)
    return "<script>" + " ".join(line.strip() for line in body.splitlines() if line.strip()) + "</script>"


_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
_HTML = re.compile(r"<html(?:\s[^>]*)?>", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!doctype[^>]*>", re.IGNORECASE)
_CHARSET = re.compile(r"\s*<meta\s[^>]*charset[^>]*>", re.IGNORECASE)


def _inject(page: str, snippet: str) -> str:
    """``page`` with ``snippet`` first in its ``<head>`` (after a leading ``<meta charset>``,
    which must stay within the first bytes of the file), or wherever the parser will put it
    in the head when the page has no ``<head>`` tag."""
    for pattern in (_HEAD, _HTML, _DOCTYPE):
        match = pattern.search(page)
        if match:
            at = match.end()
            if pattern is _HEAD:
                charset = _CHARSET.match(page, at)
                if charset:
                    at = charset.end()
            return page[:at] + snippet + page[at:]
    return snippet + page


def find_chromium() -> str | None:
    """The headless browser executable, or None when there is none.

    Returns
    -------
    str or None
        The absolute path of the executable named by the environment variable
        ``STOCHHOM_CHROMIUM`` (a path or a command on ``PATH``) when it is set, else of the
        first of ``chromium``, ``chromium-browser`` and ``google-chrome`` on ``PATH``.
        None when ``STOCHHOM_CHROMIUM`` is set but names no executable (it is not silently
        replaced by another browser), or when none of them is installed.
    """
    named = os.environ.get(CHROMIUM_ENV, "").strip()
    if named:
        found = shutil.which(named)
        return str(Path(found).resolve()) if found else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _require_chromium() -> str:
    exe = find_chromium()
    if exe is not None:
        return exe
    named = os.environ.get(CHROMIUM_ENV, "").strip()
    if named:
        raise InputError(
            f"{CHROMIUM_ENV}={named!r} is neither an executable file nor a command on PATH; point it at a "
            f"Chromium or Chrome executable, or unset it to use `chromium` from PATH (Debian's package "
            f"`chromium`: apt-get install chromium)"
        )
    raise InputError(
        f"no headless browser found: none of {', '.join(_CANDIDATES)} is on PATH; install Debian's package "
        f"`chromium` (apt-get install chromium) or set {CHROMIUM_ENV} to the browser executable"
    )


def _html_file(html_path: str | Path) -> Path:
    path = Path(html_path)
    if not path.is_file():
        raise InputError(f"HTML file {str(path)!r} does not exist; write the page first (e.g. with write_report)")
    return path.resolve()


def _stderr_tail(stderr: str, lines: int = 15) -> str:
    """The last lines of Chromium's stderr, without the D-Bus noise of a desktop-less machine."""
    kept = [line for line in stderr.splitlines() if line.strip() and "dbus" not in line.lower()]
    return "\n".join(kept[-lines:]) or "(nothing on stderr)"


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (Chromium and its helper processes)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - not exercised on Linux CI
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _run_chromium(exe: str, args: list[str], profile: Path, *, timeout: float, action: str) -> tuple[str, str]:
    """Run Chromium headless with ``args`` and return its stdout and stderr.

    Raises
    ------
    StochhomError
        Chromium could not start, exited with a non-zero status or ran past ``timeout``
        seconds (it is then killed with its process group); the message quotes the tail of
        its stderr.
    """
    cmd = [exe, *_FLAGS, f"--user-data-dir={profile}", *args]
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=os.name == "posix",
        )
    except OSError as exc:
        raise StochhomError(f"could not start headless Chromium {exe!r} while {action}: {exc}") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a helper escaped the group and holds a pipe open
            out, err = b"", b""
            proc.kill()
            proc.wait(timeout=10)
        raise StochhomError(
            f"headless Chromium ({exe}) timed out after {timeout:g} s while {action} and was killed; "
            f"retry with a larger timeout on a loaded machine. Last lines of its stderr:\n"
            f"{_stderr_tail(err.decode('utf-8', 'replace'))}"
        ) from None
    finally:
        _kill_group(proc)  # helpers left behind by a crashed browser
    if proc.returncode != 0:
        raise StochhomError(
            f"headless Chromium ({exe}) failed with exit status {proc.returncode} while {action}. "
            f"Last lines of its stderr:\n{_stderr_tail(err.decode('utf-8', 'replace'))}"
        )
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class PageCheck:
    """What a reviewer checks on a rendered page, measured in Chromium's DOM after ``load``.

    Attributes
    ----------
    path : Path
        The page that was checked.
    title : str
        ``document.title``.
    js_errors : list of str
        Uncaught errors (with their line), unhandled promise rejections and
        ``console.error`` messages, in order.
    images : int
        Number of ``<img>`` elements.
    broken_images : list of dict
        ``{"src": first 80 characters of src, "alt": alt}`` of every image that did not
        load or has no pixels (``complete`` false or ``naturalWidth`` 0).
    first_section_id : str or None
        ``id`` of the first ``<section>`` inside ``<main>`` (or of the first ``<section>`` of
        the document when none is inside ``<main>``); None without a section or an id.
    overflowing : list of dict
        ``{"tag", "text" (first 60 characters), "scrollWidth", "clientWidth"}`` of every
        ``td``, ``th``, ``figcaption`` and ``.card`` or ``.answer`` element whose content is
        wider than its box (``scrollWidth > clientWidth + 1``, CSS px).
    small_figure_text : list of dict
        Figures whose smallest text renders below ``min_font_px``: for every ``<img>`` with
        attributes ``width`` (the figure's natural width, px) and ``data-min-font-px`` (its
        smallest font at that width, px), the rendered size
        ``px = data-min-font-px * clientWidth / width``; entries
        ``{"alt", "px", "data_min_font_px", "width", "client_width"}``.
    page_width_overflow : bool
        The page scrolls horizontally: ``page_scroll_width > viewport_width + 1``.
    page_scroll_width : int
        ``document.documentElement.scrollWidth`` (CSS px).
    viewport_width : int
        ``document.documentElement.clientWidth`` (CSS px): the window's width less its
        vertical scrollbar, the width the page may use without scrolling sideways.
    document_height : int
        Height of the page as loaded (CSS px), measured before ``<details>`` are opened.
    min_font_px : float
        The threshold of ``small_figure_text``.
    """

    path: Path
    title: str
    js_errors: list[str]
    images: int
    broken_images: list[dict[str, str]]
    first_section_id: str | None
    overflowing: list[dict[str, Any]]
    small_figure_text: list[dict[str, Any]]
    page_width_overflow: bool
    page_scroll_width: int
    viewport_width: int
    document_height: int
    min_font_px: float = MIN_FIGURE_FONT_PX

    def problems(self) -> list[str]:
        """One line per problem a reviewer would flag; empty when the page passes."""
        lines = [f"JavaScript error: {message}" for message in self.js_errors]
        lines += [
            f"broken image (alt {_short(img['alt'])!r}): {img['src']!r} did not load or has no pixels"
            for img in self.broken_images
        ]
        lines += [
            f"<{box['tag']}> content is wider than its box by {box['scrollWidth'] - box['clientWidth']} px "
            f"(scrollWidth {box['scrollWidth']} > clientWidth {box['clientWidth']}): {box['text']!r}"
            for box in self.overflowing
        ]
        lines += [
            f"figure text too small (alt {_short(fig['alt'])!r}): its smallest font renders at {fig['px']:.1f} px "
            f"< {self.min_font_px:g} px (displayed {fig['client_width']} px wide of {fig['width']:g} px); "
            f"display it wider or enlarge its fonts"
            for fig in self.small_figure_text
        ]
        if self.page_width_overflow:
            lines.append(
                f"the page scrolls horizontally: it is {self.page_scroll_width} px wide in a "
                f"{self.viewport_width} px wide window"
            )
        return lines

    @property
    def ok(self) -> bool:
        """True when :meth:`problems` is empty."""
        return not self.problems()


def _parse_result(dom: str, page: Path, stderr: str) -> dict[str, Any]:
    marker = f'<pre id="{_RESULT_ID}"'
    start = dom.rfind(marker)
    if start < 0:
        raise StochhomError(
            f"headless Chromium dumped {page.name} without the check's result: the page did not finish "
            f"loading within {_VIRTUAL_TIME_MS / 1000:g} s of page time (a resource that never arrives, or "
            f"a script that blocks the load event). Last lines of Chromium's stderr:\n{_stderr_tail(stderr)}"
        )
    start = dom.index(">", start) + 1
    end = dom.index("</pre>", start)
    result = json.loads(html.unescape(dom[start:end]))
    if "check_error" in result:
        raise StochhomError(f"the page check script failed in {page.name}: {result['check_error']}")
    return result


def _measure(
    html_path: str | Path, *, width: int, height: int, timeout: float, open_details: bool, extra: tuple[str, ...] = ()
) -> tuple[Path, dict[str, Any]]:
    page = _html_file(html_path)
    exe = _require_chromium()
    source = page.read_bytes().decode("utf-8", "surrogateescape")
    snippet = _script(open_details)
    if "<base" not in source.lower():  # relative URLs resolve against the original's folder
        snippet = f'<base href="{html.escape(page.parent.as_uri() + "/")}">' + snippet
    with tempfile.TemporaryDirectory(prefix="stochhom-chromium-") as tmp:
        copy = Path(tmp) / page.name
        copy.write_bytes(_inject(source, snippet).encode("utf-8", "surrogateescape"))
        dom, stderr = _run_chromium(
            exe,
            [f"--virtual-time-budget={_VIRTUAL_TIME_MS}", f"--window-size={width},{height}", *extra,
             "--dump-dom", copy.as_uri()],
            Path(tmp) / "profile",
            timeout=timeout,
            action=f"checking {page}",
        )
    return page, _parse_result(dom, page, stderr)


def check_page(
    html_path: str | Path,
    width: int = 1400,
    height: int = 900,
    timeout: float = 120,
    *,
    open_details: bool = True,
    min_font_px: float = MIN_FIGURE_FONT_PX,
) -> PageCheck:
    """Render a page in headless Chromium and measure what a reviewer would check.

    Parameters
    ----------
    html_path : str or Path
        The HTML file. It is not modified: a copy with the check script is rendered, with
        relative URLs still resolved against the original's folder.
    width, height : int
        Browser window size (CSS px). Headless Chromium keeps about 140 px of the height
        for its invisible window frame, so the viewport is ``width`` wide and a little less
        than ``height`` tall.
    timeout : float
        Wall-clock limit of the Chromium run (s).
    open_details : bool
        Open every ``<details>`` before measuring, so that collapsed content is checked as
        a reader who expands it sees it.
    min_font_px : float
        Smallest acceptable rendered font of a figure (px), see
        :attr:`PageCheck.small_figure_text`.

    Returns
    -------
    PageCheck
        The measurements; :meth:`PageCheck.problems` lists what is wrong.

    Raises
    ------
    InputError
        ``html_path`` is not a file, or no browser is found (see :func:`find_chromium`).
    StochhomError
        Chromium failed, timed out, or the page did not finish loading.
    """
    page, result = _measure(html_path, width=width, height=height, timeout=timeout, open_details=open_details)
    small = [fig for fig in result["figure_fonts"] if fig["px"] < min_font_px]
    return PageCheck(
        path=page,
        title=result["title"],
        js_errors=result["js_errors"],
        images=result["images"],
        broken_images=result["broken_images"],
        first_section_id=result["first_section_id"],
        overflowing=result["overflowing"],
        small_figure_text=small,
        page_width_overflow=result["page_scroll_width"] > result["viewport_width"] + 1,
        page_scroll_width=result["page_scroll_width"],
        viewport_width=result["viewport_width"],
        document_height=result["document_height"],
        min_font_px=min_font_px,
    )


def _output(path: str | Path) -> Path:
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def screenshot(
    html_path: str | Path, png_path: str | Path, width: int = 1400, height: int | None = None, timeout: float = 120
) -> Path:
    """Save a PNG screenshot of a page rendered in headless Chromium.

    Parameters
    ----------
    html_path : str or Path
        The HTML file.
    png_path : str or Path
        The PNG to write (its folder is created).
    width : int
        Window width (CSS px, one image pixel per CSS px).
    height : int, optional
        Image height (px). Default: the height of the whole page at this width (measured
        first in a separate run), i.e. a full-page screenshot. Scrollbars are hidden.
    timeout : float
        Wall-clock limit of each Chromium run (s).

    Returns
    -------
    Path
        ``png_path``.

    Raises
    ------
    InputError
        ``html_path`` is not a file, or no browser is found.
    StochhomError
        Chromium failed or timed out, or wrote no PNG.
    """
    page = _html_file(html_path)
    exe = _require_chromium()
    out = _output(png_path)
    if height is None:
        _, result = _measure(page, width=width, height=900, timeout=timeout, open_details=False,
                             extra=("--hide-scrollbars",))
        height = max(int(result["document_height"]), 1)
    return _render(exe, page, out, [f"--window-size={width},{height}", "--hide-scrollbars", "--screenshot={file}"],
                   b"\x89PNG\r\n\x1a\n", "PNG screenshot", f"taking a screenshot of {page}", timeout)


def print_pdf(html_path: str | Path, pdf_path: str | Path, timeout: float = 180) -> Path:
    """Print a page to PDF with headless Chromium (its print stylesheet, no header or footer).

    Parameters
    ----------
    html_path : str or Path
        The HTML file.
    pdf_path : str or Path
        The PDF to write (its folder is created; an existing file is replaced only when
        printing succeeds).
    timeout : float
        Wall-clock limit of the Chromium run (s).

    Returns
    -------
    Path
        ``pdf_path``.

    Raises
    ------
    InputError
        ``html_path`` is not a file, or no browser is found.
    StochhomError
        Chromium failed or timed out, or wrote no PDF (a file not starting with ``%PDF``).
    """
    page = _html_file(html_path)
    exe = _require_chromium()
    out = _output(pdf_path)
    return _render(exe, page, out, ["--no-pdf-header-footer", "--print-to-pdf={file}"], b"%PDF-", "PDF",
                   f"printing {page} to PDF", timeout)


def _render(exe: str, page: Path, out: Path, flags: list[str], magic: bytes, what: str, action: str,
            timeout: float) -> Path:
    """Run Chromium on ``page`` with ``flags`` (``{file}`` standing for a temporary output file),
    check that the file starts with ``magic``, then move it to ``out`` (an existing ``out`` is
    replaced only on success)."""
    with tempfile.TemporaryDirectory(prefix="stochhom-chromium-") as tmp:
        # Chromium appends its own suffix to a name without it: give the one it expects
        made = Path(tmp) / ("output.png" if any(f.startswith("--screenshot") for f in flags) else "output.pdf")
        _run_chromium(exe, [f"--virtual-time-budget={_VIRTUAL_TIME_MS}", *(f.format(file=made) for f in flags),
                            page.as_uri()], Path(tmp) / "profile", timeout=timeout, action=action)
        if not made.is_file() or made.read_bytes()[:len(magic)] != magic:
            raise StochhomError(f"headless Chromium ({exe}) wrote no {what} of {page}")
        shutil.move(made, out)
    return out
