"""Building blocks of the report's HTML and of ``summary.json``: escaping, number and
interval formatting, tables, the style sheet, and the one interval layout of ``summary.json``.

Every string that reaches the page passes through :func:`_esc`; every number through
:func:`_num` (four significant digits, ``–`` for a missing or non-finite value). Tables
are scrollable boxes (:func:`_table`), so that a wide table never widens the page.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..units import Units

_CSS = """
:root { --fg: #1d2125; --muted: #566170; --line: #d9dde2; --head: #f3f5f7; --accent: #1f5f99;
        --warn-bg: #fff6dd; --warn: #c98a00; --err-bg: #fdeaea; --err: #b3261e; --ok: #2e7d32; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; margin: 0 auto;
       max-width: 1380px; padding: 1.2em 2em 3em; color: var(--fg); line-height: 1.5; font-size: 16px; }
header h1 { margin: 0.3em 0 0.1em; font-size: 1.8em; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: 0.2em; margin-top: 2.2em; font-size: 1.45em; }
h3 { margin: 1.6em 0 0.4em; font-size: 1.15em; }
p, li { max-width: 72em; }
a { color: var(--accent); }
nav ol { columns: 3 17em; font-size: 0.95em; margin: 0.6em 0; }
.meta { color: var(--muted); font-size: 0.9em; margin: 0; overflow-wrap: anywhere; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 600px), 1fr));
        gap: 1.4em 2.2em; align-items: start; margin: 1em 0; }
.figs figure.wide { grid-column: 1 / -1; }
figure { margin: 0; min-width: 0; }
figure img { max-width: 100%; height: auto; display: block; }
figure.wide { overflow-x: auto; }  /* a wide figure keeps its size (and readable text); it scrolls on a narrow screen */
figure.wide img { max-width: none; }
figcaption { font-size: 0.9em; color: var(--muted); margin-top: 0.35em; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: 0.6em 0 1em; }
table { border-collapse: collapse; font-size: 0.9em; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 0.3em 0.7em; text-align: right; vertical-align: top; }
th { background: var(--head); font-weight: 600; border-bottom: 2px solid #c5ccd3; }
th.group { text-align: center; border-bottom: 1px solid #c5ccd3; }
td.text, th.text { text-align: left; }
td.text { overflow-wrap: break-word; }  /* words stay whole: a narrow screen scrolls the table */
tbody tr:hover { background: #f8fafc; }
.question { font-size: 1.12em; border-left: 4px solid var(--accent); padding: 0.2em 0 0.2em 0.9em; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(13em, 1fr)); gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 0.55em 0.9em; overflow-wrap: anywhere; }
.card .label { color: var(--muted); font-size: 0.85em; }
.card .value { font-size: 1.25em; font-weight: 600; }
.warnings li { margin: 0.25em 0; }
.ok { color: var(--ok); }
.not-run, .warn { background: var(--warn-bg); border-left: 4px solid var(--warn); padding: 0.5em 0.9em; }
.error { background: var(--err-bg); border-left: 4px solid var(--err); padding: 0.5em 0.9em; }
details { margin: 0.6em 0 1em; }
details > summary { cursor: pointer; color: var(--accent); font-weight: 600; }
code { background: #f2f3f5; padding: 0 0.25em; border-radius: 3px; overflow-wrap: anywhere; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  .figs { display: block; }
  figure { break-inside: avoid; margin: 0.6em 0; }
  figure img, figure.wide img { max-width: 100%; }
  h2 { break-before: page; } section#summary h2 { break-before: avoid; }
  h2, h3 { break-after: avoid; }
  tr { break-inside: avoid; }
  .table-wrap { overflow: visible; }
  table { font-size: 8.5pt; }
}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v))


def _num(v: Any) -> str:
    """A number for a table cell (4 significant digits; '–' for missing values)."""
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}" if math.isfinite(float(v)) else "–"
    return str(v)


def _ci(value: Any, lo: Any, hi: Any) -> str:
    text = _num(value)
    if _finite(lo) and _finite(hi):
        text += f" [{_num(lo)}, {_num(hi)}]"
    return text


def _with_ci(value: Any, interval: Any) -> Any:
    """A table cell: ``value``, as ``"value [low, high]"`` when it has an ``interval``."""
    if not _finite(value) or not interval or len(interval) != 2:
        return value
    return _ci(value, interval[0], interval[1])


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays converted, NaN and inf as None."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.str_):
        return str(obj)
    return obj


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]], text_columns: int | Iterable[int] = 0,
           groups: Sequence[tuple[str, int]] | None = None) -> str:
    """An HTML table in a horizontally scrollable box; every header and cell is escaped
    (numbers formatted by :func:`_num`). Text columns (the first ``text_columns``, or those
    indices) are left-aligned, numbers right-aligned; ``groups`` adds a header row of
    ``(label, span)`` above the columns."""
    text = set(range(text_columns)) if isinstance(text_columns, int) else set(text_columns)
    text |= {i + len(columns) for i in text if i < 0}
    head = "".join(f'<th class="{"text" if i in text else ""}">{_esc(c)}</th>' for i, c in enumerate(columns))
    top = ""
    if groups:
        top = "<tr>" + "".join(f'<th class="group" colspan="{int(n)}">{_esc(g)}</th>' for g, n in groups) + "</tr>"
    body = []
    for row in rows:
        cells = "".join(f'<td class="{"text" if i in text else ""}">{_esc(_num(c))}</td>'
                        for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return (f'<div class="table-wrap"><table><thead>{top}<tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _details(label: str, content: str, open_: bool = False) -> str:
    """A collapsible block (long tables): ``label`` is shown, ``content`` on request."""
    return f"<details{' open' if open_ else ''}><summary>{_esc(label)}</summary>{content}</details>"


def _with_unit(label: str, unit: str) -> str:
    """``label [unit]``, or ``label`` when the unit is empty."""
    return f"{label} [{unit}]" if unit else label


def _seconds(v: Any) -> str:
    """Seconds for a timing table: one decimal (0.0 for a stage that had nothing to do)."""
    return f"{float(v):.1f}" if _finite(v) else "–"


def _value_text(v: Any) -> str:
    """A configuration value as text: lists joined, tables as ``key = value`` pairs."""
    if isinstance(v, Mapping):
        return "; ".join(f"{k} = {_value_text(x)}" for k, x in v.items()) or "–"
    if isinstance(v, (list, tuple)):
        return ", ".join(_value_text(x) for x in v) or "–"
    if v is None:
        return "–"
    return _num(v) if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) else str(v)


def _pct(v: Any) -> str:
    return f"{100 * float(v):.1f} %" if _finite(v) else "–"


def _scalar(v: Any) -> Any:
    """A scalar from a JSON value (a one-element list for single-output surrogates)."""
    if isinstance(v, list) and len(v) == 1:
        return _scalar(v[0])
    return v


def _dist_text(spec: Mapping[str, Any]) -> str:
    """An input distribution in words, e.g. ``uniform on [0.2, 0.5]``."""
    d = dict(spec)
    kind = d.pop("distribution", "?")
    if kind in ("uniform", "loguniform") and {"low", "high"} <= set(d):
        return f"{kind} on [{_num(d['low'])}, {_num(d['high'])}]"
    return f"{kind} (" + ", ".join(f"{k} = {_num(v)}" for k, v in d.items()) + ")"


def _parameter_text(name: str, spec: Any, units: Units) -> str:
    unit = units.of(name)
    if isinstance(spec, Mapping):
        return _dist_text(spec) + (f" ({unit})" if unit and unit != "–" else "")
    if isinstance(spec, (list, tuple)):
        return "grid: " + ", ".join(_num(v) for v in spec) + (f" ({unit})" if unit and unit != "–" else "")
    return _value_text(spec)


_SOURCES = (("input", "parameters (mean response)"), ("aleatoric", "SVE scatter (microstructure)"),
            ("epistemic", "surrogate (epistemic)"), ("unsplit", "scatter and surrogate, unsplit"))


def _card(label: str, value: str) -> str:
    return f'<div class="card"><div class="label">{_esc(label)}</div><div class="value">{_esc(value)}</div></div>'


def _plain_text(markup: str) -> str:
    """An HTML fragment as plain text (for ``summary.json``)."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup)).strip()


def _interval(value: Any, low: Any, high: Any) -> Any:
    """``{"value", "low", "high", "level"}``; element-wise for lists of equal length."""
    if isinstance(value, list) and isinstance(low, list) and isinstance(high, list) \
            and len(value) == len(low) == len(high):
        if len(value) == 1:
            return _interval(value[0], low[0], high[0])
        return [_interval(v, lo, hi) for v, lo, hi in zip(value, low, high)]
    return {"value": _scalar(value), "low": _scalar(low), "high": _scalar(high), "level": 0.95}


def _interval_layout(obj: Any) -> Any:
    """One layout for every estimate with an interval in ``summary.json``.

    ``x`` with ``x_ci = [low, high]``, or with ``x_low`` and ``x_high``, becomes ``x: {"value",
    "low", "high", "level": 0.95}``; the edges of an out-of-distribution shell
    (``distance_low``, ``distance_high``, ``distance_mean``) become ``distance: {"mean",
    "from", "to"}``; one-element lists of single-output models become scalars.
    """
    if isinstance(obj, list):
        return [_interval_layout(v) for v in obj]
    if not isinstance(obj, Mapping):
        return obj
    d = dict(obj)
    out: dict[str, Any] = {}
    if {"distance_low", "distance_high"} <= set(d):
        out["distance"] = {"mean": d.pop("distance_mean", None), "from": d.pop("distance_low"),
                           "to": d.pop("distance_high")}
    for k in list(d):
        if k not in d:
            continue
        ci = d.get(f"{k}_ci")
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            out[k] = _interval(_interval_layout(d[k]), ci[0], ci[1])
            d.pop(f"{k}_ci")
        elif f"{k}_ci" in d and ci is None:  # no interval: the value alone, in the same layout
            d.pop(f"{k}_ci")
            out[k] = None if d[k] is None else _interval(d[k], None, None)
        elif f"{k}_low" in d and f"{k}_high" in d:
            out[k] = _interval(d[k], d.pop(f"{k}_low"), d.pop(f"{k}_high"))
        elif k.endswith("_ci") and k[:-3] not in d and isinstance(d[k], (list, tuple)) and len(d[k]) == 2:
            out[k[:-3]] = {"value": None, "low": _scalar(d[k][0]), "high": _scalar(d[k][1]), "level": 0.95}
        else:
            v = d[k]
            out[k] = _scalar(v) if isinstance(v, list) and len(v) == 1 and not isinstance(v[0], (dict, list)) \
                else _interval_layout(v)
    return out


def _units_text(u: Units) -> str:
    d = u.as_dict()
    text = f"lengths in {d['length']}, moduli in {d['modulus']}, conductivities in {d['conductivity']}"
    return text if u.declared else text + " (none declared)"
