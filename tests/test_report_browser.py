"""The headless-browser check of a page: it passes a clean page and catches each defect a
reviewer would flag (a script error, a broken image, text wider than its cell, figure text
rendered too small), and prints a page to PDF.

The browser tests need headless Chromium and are skipped without it. Chromium can start
slowly on a loaded machine: each call gets a generous timeout and is retried once when it
times out.
"""

from __future__ import annotations

import base64
import struct
import tempfile
from pathlib import Path

import pytest

from stochhom.errors import InputError, StochhomError
from stochhom.report import browser
from stochhom.report.browser import check_page, find_chromium, print_pdf, screenshot

SKIP = (
    "headless Chromium not found: install Debian's chromium package (apt-get install chromium) "
    "or set STOCHHOM_CHROMIUM"
)
TIMEOUT = 90  # s, per Chromium run

#: A valid 1x1 PNG.
PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.skip(SKIP)
    return exe


def twice(fn, *args, **kwargs):
    """Call a browser function, once more if Chromium timed out (a slow start on a loaded machine)."""
    try:
        return fn(*args, **kwargs)
    except StochhomError as exc:
        if "timed out" not in str(exc):
            raise
    return fn(*args, **kwargs)


def page(tmp_path: Path, body: str, title: str = "Test page", name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body>\n{body}\n</body></html>\n",
        encoding="utf-8",
    )
    return path


def check(path: Path, **kwargs) -> browser.PageCheck:
    return twice(check_page, path, timeout=TIMEOUT, **kwargs)


CLEAN = f"""
<main>
<section id="summary"><h2>Summary: the answers</h2>
  <div class="card">E = 12.3 GPa [11.9, 12.8]</div>
  <p class="answer">The RVE is 64 voxels.</p>
  <table><tr><th>model</th><th>R²</th></tr><tr><td>gpr</td><td>0.98</td></tr></table>
  <figure><img src="{PIXEL}" width="600" data-min-font-px="12" alt="parity plot">
  <figcaption>Predicted against computed.</figcaption></figure>
</section>
<section id="rve"><h2>RVE size</h2><details><summary>fit</summary><p>details</p></details></section>
</main>
"""


def test_a_clean_page_passes(chromium, tmp_path):
    path = page(tmp_path, CLEAN, title="Étude – ρ")
    before = path.read_bytes()
    result = check(path)
    assert result.problems() == []
    assert result.ok
    assert result.title == "Étude – ρ"
    assert result.images == 1
    assert result.first_section_id == "summary"
    assert result.document_height > 0
    assert path.read_bytes() == before  # the check renders a copy


def test_a_script_error_is_reported_with_its_line(chromium, tmp_path):
    result = check(page(tmp_path, "<p>text</p>\n<script>undefined_fn()</script>"))
    assert not result.ok
    assert len(result.js_errors) == 1
    assert "undefined_fn" in result.js_errors[0]
    assert "(line 5)" in result.js_errors[0]  # its line in the original file
    assert any("JavaScript error" in p and "undefined_fn" in p for p in result.problems())


def test_rejections_and_console_errors_are_reported(chromium, tmp_path):
    body = "<script>Promise.reject(new Error('no data')); console.error('bad value', 42);</script>"
    result = check(page(tmp_path, body))
    assert sorted(result.js_errors) == ["Unhandled promise rejection: no data", "console.error: bad value 42"]


def test_broken_images_are_reported(chromium, tmp_path):
    body = (
        f'<img src="{PIXEL}" alt="fine">'
        '<img src="data:image/png;base64,AAAA" alt="corrupt">'
        '<img src="figures/missing.png" alt="missing file">'
    )
    result = check(page(tmp_path, body))
    assert result.images == 3
    assert result.broken_images == [
        {"src": "data:image/png;base64,AAAA", "alt": "corrupt"},
        {"src": "figures/missing.png", "alt": "missing file"},
    ]
    assert sum("broken image" in p for p in result.problems()) == 2


def test_relative_images_resolve_next_to_the_page(chromium, tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "pixel.png").write_bytes(base64.b64decode(PIXEL.split(",", 1)[1]))
    result = check(page(tmp_path, '<img src="figures/pixel.png" alt="relative">'))
    assert result.broken_images == []


def test_a_cell_too_narrow_for_its_word_is_reported(chromium, tmp_path):
    word = "Supercalifragilisticexpialidocious_unbreakable_identifier"
    body = (
        '<table style="width:200px"><tr>'
        f'<td style="max-width:50px;overflow:hidden;white-space:nowrap">{word}</td><td>b</td>'
        "</tr></table>"
    )
    result = check(page(tmp_path, body))
    assert len(result.overflowing) == 1
    cell = result.overflowing[0]
    assert cell["tag"] == "td"
    assert cell["text"] == word[:60]
    assert cell["scrollWidth"] > cell["clientWidth"] + 1
    assert any("<td> content is wider than its box" in p for p in result.problems())


def test_a_page_wider_than_the_window_is_reported(chromium, tmp_path):
    result = check(page(tmp_path, '<div style="width:2000px">wide</div>'), width=1000)
    assert result.page_width_overflow
    assert result.page_scroll_width > result.viewport_width
    assert any("scrolls horizontally" in p for p in result.problems())


def test_the_first_section_is_the_first_inside_main(chromium, tmp_path):
    body = '<section id="banner">b</section><main><section id="summary">s</section><section id="rve"></section></main>'
    assert check(page(tmp_path, body)).first_section_id == "summary"


def test_a_figure_shown_at_half_width_has_half_size_text(chromium, tmp_path):
    body = (
        f'<img src="{PIXEL}" width="600" data-min-font-px="12" style="max-width:300px" alt="Sobol indices">'
        f'<img src="{PIXEL}" width="600" data-min-font-px="12" alt="full width">'
    )
    result = check(page(tmp_path, body))
    assert len(result.small_figure_text) == 1
    small = result.small_figure_text[0]
    assert small["alt"] == "Sobol indices"
    assert small["px"] == pytest.approx(6.0)
    assert any("figure text too small" in p and "6.0 px" in p for p in result.problems())


def test_print_pdf_writes_a_pdf(chromium, tmp_path):
    rows = "".join(f"<tr><td>{i}</td><td>{i**2}</td></tr>" for i in range(30))
    path = page(tmp_path, f"<h1>Table</h1><table><tr><th>n</th><th>n²</th></tr>{rows}</table>")
    out = twice(print_pdf, path, tmp_path / "out" / "page.pdf", timeout=TIMEOUT)
    assert out == (tmp_path / "out" / "page.pdf").resolve()
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(data) > 1000


def test_a_full_page_screenshot_is_as_tall_as_the_page(chromium, tmp_path):
    path = page(tmp_path, '<div style="height:2500px">tall</div><p>end</p>')
    out = twice(screenshot, path, tmp_path / "page.png", width=640, timeout=TIMEOUT)
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width == 640
    assert height > 2500


def test_a_page_that_never_finishes_is_killed_at_the_timeout(chromium, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    path = page(tmp_path, "<script>while (true) {}</script>")
    with pytest.raises(StochhomError, match="timed out after 3 s"):
        check_page(path, timeout=3)
    assert list(scratch.iterdir()) == []  # the copy and the browser profile are removed


def test_an_invalid_browser_variable_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STOCHHOM_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert find_chromium() is None
    with pytest.raises(InputError, match=r"STOCHHOM_CHROMIUM=.*no-such-browser.*apt-get install chromium"):
        check_page(page(tmp_path, "<p>x</p>"))


def test_without_a_browser_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv("STOCHHOM_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() is None
    expected = r"Debian's package `chromium` \(apt-get install chromium\).*STOCHHOM_CHROMIUM"
    with pytest.raises(InputError, match=expected):
        print_pdf(page(tmp_path, "<p>x</p>"), tmp_path / "x.pdf")


def test_the_browser_variable_wins_over_path(tmp_path, monkeypatch):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("STOCHHOM_CHROMIUM", str(fake))
    assert find_chromium() == str(fake.resolve())


def test_a_missing_page_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        check_page(tmp_path / "nope.html")


def test_the_check_script_goes_first_in_head_on_the_same_line():
    page_text = '<!doctype html>\n<html><head>\n<meta charset="utf-8"><script>a()</script></head>\n<body></body></html>'
    injected = browser._inject(page_text, "<script>CHECK</script>")
    assert injected.index("CHECK") < injected.index("a()")
    assert injected.index('<meta charset="utf-8">') < injected.index("CHECK")  # charset stays early
    assert injected.count("\n") == page_text.count("\n")
    assert "\n" not in browser._script(open_details=True)
    assert browser._inject("<header>x</header>", "<s>") == "<s><header>x</header>"  # not mistaken for <head>
