"""Tests of the report figures' labels, legends, readability and honesty (stochhom.report.figures).

Oracles: the inputs built by hand here (what the figure must show, or why it must refuse),
:func:`stochhom.validation.calibration_check` (the calibration figure must mark exactly its
levels, bands and verdict), the columns of a degradation table (coverage is drawn as
itself, not as a ratio), the report's display rule (a figure ``w`` inches wide is shown
``100 w`` px wide, capped by its slot: 640 px for one column, 1300 px across the page;
every text must render at 10 px or more and stand free of every other) and the declared
units of :class:`stochhom.units.Units`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import stochhom as sh
from stochhom.errors import InputError
from stochhom.report import figures as F
from stochhom.units import Units
from stochhom.validation import calibration_check

PHASES = [sh.Conductivity(1.0), sh.Conductivity(10.0)]


def _props(contrast: list[float], replicates: int = 3, rng: int = 0, with_fractions: bool = True) -> xr.Dataset:
    """A synthetic conductivity apparent-properties dataset (sample, i, j), one point per contrast."""
    gen = np.random.default_rng(rng)
    c = np.repeat(np.asarray(contrast, float), replicates)
    n = c.size
    k = np.zeros((n, 2, 2))
    k[:, 0, 0] = k[:, 1, 1] = np.sqrt(c) * np.exp(0.1 * gen.standard_normal(n))
    data = {"conductivity": (("sample", "i", "j"), k), "converged": ("sample", np.ones(n, np.int8))}
    if with_fractions:
        data["phase_fraction"] = (("sample", "phase"), np.tile([0.6, 0.4], (n, 1)))
    coords = {"sample": np.arange(n), "contrast": ("sample", c),
              "point": ("sample", np.repeat(np.arange(len(contrast)), replicates))}
    return xr.Dataset(data, coords=coords, attrs={"dim": 2, "physics": "conductivity", "voxel_size": 1.0})


# --------------------------------------------------------------------------- labels


def _line(label: str) -> str:
    """A (wrapped) label as one line."""
    return label.replace("\n", " ")


@pytest.mark.parametrize(("name", "label", "unit"), [
    ("log_conductivity_eigenvalues_0", "ln conductivity eigenvalue 0 (smallest)", "–"),
    ("conductivity_eigenvalues_2", "conductivity eigenvalue 2 (sorted ascending)", "phase units"),
    ("mean_conductivity", "mean conductivity tr k / d (d: dimension)", "phase units"),
    ("bulk_modulus", "bulk modulus K", "phase units"),
    ("log_shear_modulus", "ln shear modulus G", "–"),
    ("conductivity_0_1", "conductivity k₀₁", "phase units"),
    ("phase_fraction_1", "phase fraction φ₁", "–"),
    ("some_other_target", "some other target", "phase units"),
])
def test_target_labels_and_units(name: str, label: str, unit: str) -> None:
    assert F.target_label(name) == label
    assert F.target_unit(name) == unit


def test_target_labels_name_the_largest_eigenvalue_and_d_when_the_dimension_is_known() -> None:
    """With ``dim`` the last eigenvalue is the largest and tr k / d takes its d; without it the
    eigenvalue says its order only ("sorted ascending") and d is explained."""
    assert F.target_label("conductivity_eigenvalues_1", dim=2) == "conductivity eigenvalue 1 (largest)"
    assert F.target_label("log_conductivity_eigenvalues_2", dim=3) == "ln conductivity eigenvalue 2 (largest)"
    assert F.target_label("conductivity_eigenvalues_1", dim=3) == "conductivity eigenvalue 1 (sorted ascending)"
    assert F.target_label("conductivity_eigenvalues_0", dim=3) == "conductivity eigenvalue 0 (smallest)"
    assert F.target_label("conductivity_eigenvalues_1") == "conductivity eigenvalue 1 (sorted ascending)"
    assert F.target_label("mean_conductivity", dim=2) == "mean conductivity tr k / 2"
    assert F.axis_label("mean_conductivity", 3) == "mean conductivity tr k / 3 [phase units]"
    # the RVE figure knows the dimension
    rve = {"conductivity_eigenvalues_1": _rve([40] * 4)["conductivity_0_0"]}
    assert F.rve_figure(rve, dim=2).axes[0].get_title() == "conductivity eigenvalue 1 (largest)"


# --------------------------------------------------------------------------- properties


def test_properties_without_phase_fractions_are_drawn_without_bounds_and_say_so() -> None:
    props = _props([2.0, 50.0], with_fractions=False)
    fig = F.properties_figure(props, PHASES)
    assert "bounds not drawn" in fig.get_suptitle()
    assert not [line for ax in fig.axes for line in ax.lines if (line.get_gid() or "").startswith("hs_")]
    assert [line for ax in fig.axes for line in ax.lines if line.get_label() == "samples"]


def test_properties_with_no_finite_sample_raise() -> None:
    props = _props([2.0, 50.0])
    props["conductivity"][:] = np.nan
    with pytest.raises(InputError, match="no converged sample with a finite mean_conductivity"):
        F.properties_figure(props, PHASES)
    props = _props([2.0, 50.0])
    props["converged"][:] = 0
    with pytest.raises(InputError, match="no converged sample"):
        F.properties_figure(props)


def test_properties_limits_follow_the_samples_and_intervals_not_far_bounds() -> None:
    """A Voigt bound 50 times the samples does not set the y-range: its top is within 1.3× of the
    largest sample or interval end, the bound is cut by the axis and the legend says so once; the
    samples are drawn above the bounds, the bounds thin and light."""
    props = _props([2.0, 5.0, 9.0])
    phases = [sh.Conductivity(1.0), sh.Conductivity(500.0)]  # Voigt ≈ 200, the samples ≤ 3.5
    fig = F.properties_figure(props, phases)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear"
    values = F.property_columns(props)["mean_conductivity"]
    s = sh.statistics.summarize(props.assign(mean_conductivity=("sample", values)),
                                variables=["mean_conductivity"], rng=0)
    largest = max(values.max(), float(s["ci_high"].max()))
    bottom, top = ax.get_ylim()
    assert largest <= top <= 1.3 * largest
    assert bottom <= min(values.min(), float(s["ci_low"].min()))
    voigt = [line for line in ax.lines if line.get_gid() == "voigt:mean_conductivity"]
    assert voigt and np.max(voigt[0].get_ydata()) > 10 * top
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.count("bounds beyond the axis are cut") == 1
    (samples,) = [line for line in ax.lines if line.get_label() == "samples"]
    bounds = [line for line in ax.lines if (line.get_gid() or "").split(":")[0] in ("hs_lower", "hs_upper",
                                                                                     "voigt", "reuss")]
    assert bounds and all(samples.get_zorder() > b.get_zorder() for b in bounds)
    assert all(b.get_markeredgewidth() <= 1.0 and b.get_alpha() <= 0.6 for b in bounds)
    # bounds inside the samples' range: nothing is cut, nothing said
    inside = F.properties_figure(_props([2.0, 5.0, 9.0]), [sh.Conductivity(1.0), sh.Conductivity(5.0)])
    assert "bounds beyond the axis are cut" not in [t.get_text() for t in inside.legends[0].get_texts()]


def test_two_property_panels_in_a_row_span_the_page() -> None:
    fig = F.properties_figure(_elastic_props())
    assert 11.0 <= fig.get_figwidth() <= 12.4
    assert_readable(fig)


def test_volume_is_not_swept_alongside_size() -> None:
    props = _props([2.0, 50.0]).drop_vars("contrast")
    size = np.repeat([16.0, 32.0], 3)
    props = props.assign_coords(size=("sample", size)).assign(volume=("sample", size**2))
    assert F.swept_parameters(props) == ["size"]
    assert "volume" in F.swept_parameters(props.drop_vars("size"))
    assert F.axis_label("volume", 2, 1.0) == "SVE volume V [voxels²]"
    assert F.axis_label("volume", 3, 0.5) == "SVE volume V [(voxel-size units)³]"


def test_log_axes_have_no_minor_tick_labels_and_cut_intervals_are_marked() -> None:
    props = _props([2.0, 400.0], replicates=2, rng=3)
    # a point whose samples scatter widely: its Student-t interval reaches below zero
    props["conductivity"][0, 0, 0] = props["conductivity"][0, 1, 1] = 0.05
    fig = F.properties_figure(props, PHASES)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert isinstance(ax.xaxis.get_minor_formatter(), NullFormatter)
    assert isinstance(ax.yaxis.get_minor_formatter(), NullFormatter)
    cut = [line for line in ax.lines if (line.get_gid() or "").startswith("cut:")]
    assert cut and cut[0].get_label() == "interval cut at the axis"
    assert np.all(cut[0].get_ydata() == ax.get_ylim()[0])


def test_linear_axes_show_whole_intervals() -> None:
    props = _props([2.0, 3.0], replicates=2, rng=1)
    fig = F.properties_figure(props)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear"
    assert not [line for line in ax.lines if (line.get_gid() or "").startswith("cut:")]
    s = sh.statistics.summarize(props.assign(mean_conductivity=("sample", F.property_columns(props)
                                                                ["mean_conductivity"])),
                                variables=["mean_conductivity"], rng=0)
    lo, hi = float(s["ci_low"].min()), float(s["ci_high"].max())
    bottom, top = ax.get_ylim()
    assert bottom <= lo and hi <= top


# --------------------------------------------------------------------------- RVE


def _rve(counts: list[int]) -> dict:
    v = np.array([256.0, 576.0, 1024.0, 2304.0])
    return {t: {"volumes": v.tolist(), "variances": (scale / v).tolist(), "counts": counts, "alpha": 1.0,
                "alpha_ci": [0.8, 1.2], "amplitude": scale, "integral_range": 20.0,
                "integral_range_ci": [10.0, 30.0], "chi2": 1.0}
            for t, scale in (("conductivity_0_0", 100.0), ("phase_fraction_1", 5.0))}


def test_rve_axes_have_units_and_the_legend_is_below_the_axes() -> None:
    fig = F.rve_figure(_rve([40] * 4), dim=2, voxel_size=1.0)
    prop, frac = fig.axes
    assert prop.get_xlabel() == "SVE volume V [voxels²]"
    assert prop.get_ylabel() == "variance D²(V) [(phase units)²]"
    assert frac.get_ylabel() == "variance D²(V) [–]"
    assert prop.get_title() == "conductivity k₀₀"
    legend = prop.get_legend()
    assert legend.get_bbox_to_anchor().transformed(prop.transAxes.inverted()).y1 < 0.0
    assert any("n = 40 per volume" in t.get_text() for t in legend.get_texts())
    assert not prop.texts  # equal counts: said once in the legend, no annotation on the points
    for axis in (prop.xaxis, prop.yaxis):
        assert isinstance(axis.get_minor_formatter(), NullFormatter)
    fig = F.rve_figure(_rve([40, 30, 20, 10]), dim=3, voxel_size=0.5)
    assert fig.axes[0].get_xlabel() == "SVE volume V [(voxel-size units)³]"
    assert [t.get_text() for t in fig.axes[0].texts] == ["n=40", "n=30", "n=20", "n=10"]
    assert F.rve_figure(_rve([40] * 4)).axes[0].get_xlabel() == "SVE volume V [voxel volume units]"


# --------------------------------------------------------------------------- microstructure


def test_gallery_names_the_shared_parameters_and_uses_one_colour_per_label() -> None:
    ens = sh.generate("gaussian", (16, 16), n=3, rng=0, volume_fraction=0.4, correlation_length=2.0)
    fig = F.gallery_figure(ens)
    title = fig.get_suptitle()
    assert "volume fraction φ = 0.4" in title and "correlation length ℓ = 2" in title
    image = fig.axes[0].images[0]
    assert isinstance(image.norm, BoundaryNorm) and image.cmap.N == 2
    # one legend entry per phase label, in the image's colour
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["phase 0", "phase 1"]
    for k, patch in enumerate(legend.get_patches()):
        np.testing.assert_allclose(patch.get_facecolor(), image.cmap(k))


def test_s2_long_range_line_is_the_measured_fraction() -> None:
    ens = sh.generate("boolean", (24, 24), n=2, rng=1, volume_fraction=0.3, radius=2.0)
    fig = F.s2_figure(ens)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    phi_hat = float((ens["phase"].values == 1).mean())
    assert lines["measured φ̂² (long-range limit)"].get_ydata()[0] == pytest.approx(phi_hat**2)
    assert lines["nominal φ² (limit of the theory)"].get_ydata()[0] == pytest.approx(0.09)


# --------------------------------------------------------------------------- Sobol


def test_sobol_checks_the_names_clips_the_axis_and_prints_what_is_cut() -> None:
    ok = {"gpr": {"names": ["volume_fraction", "contrast"], "first": [0.6, 0.3], "total": [0.7, 0.4],
                  "first_ci": [[0.5, -3e6], [0.7, 0.5]], "total_ci": [[0.6, 0.3], [0.8, 0.5]]},
          "pce": {"names": ["volume_fraction", "contrast"], "first": [0.62, 0.31], "total": [0.68, 0.38]}}
    fig = F.sobol_figure(ok, "log_conductivity_0_0")
    ax = fig.axes[0]
    assert ax.get_ylim() == pytest.approx(F.SOBOL_LIMITS)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["volume fraction φ", "phase contrast"]
    # the interval end at -3e6 is cut at the bottom of the axis and marked there, once; no text on the bars
    (cut,) = [line for line in ax.lines if line.get_gid() == "cut:sobol" and len(line.get_xdata())]
    np.testing.assert_allclose(cut.get_ydata(), [F.SOBOL_LIMITS[0]])
    assert not ax.texts
    assert "interval cut at the axis (values in the table)" in [t.get_text() for t in fig.legends[0].get_texts()]
    # indices without shares are those of the mean response, and the axis says so
    assert ax.get_ylabel() == "Sobol index: share of Var E[Y | θ] [–]" and "ln conductivity k₀₀" in ax.get_title()
    assert len(fig.axes) == 1
    bad = {**ok, "pce": {**ok["pce"], "names": ["x0", "x1"]}}
    with pytest.raises(InputError, match="different inputs"):
        F.sobol_figure(bad, "log_conductivity_0_0")


def test_sobol_figure_of_the_whole_variance_stacks_every_share_to_one() -> None:
    """With shares (indices relative to the whole variance) a second panel stacks the first-order
    effects, the interactions, the SVE scatter and the surrogate: the bars add up to 1."""
    shares = {"input": 0.7, "aleatoric": 0.25, "epistemic": 0.05, "unsplit": 0.0}
    ind = {"gpr": {"names": ["volume_fraction", "contrast"], "first": [0.4, 0.2], "total": [0.45, 0.28],
                   "first_ci": [[0.35, 0.15], [0.45, 0.25]], "total_ci": [[0.4, 0.2], [0.5, 0.33]],
                   "shares": shares}}
    fig = F.sobol_figure(ind, "conductivity_eigenvalues_0")
    left, right = fig.axes[:2]
    assert left.get_ylabel() == "Sobol index: share of the whole variance [–]"
    heights = [p.get_height() for p in right.patches]
    assert sum(heights) == pytest.approx(1.0, abs=1e-12)  # 0.4 + 0.2 + 0.1 interactions + 0.25 + 0.05
    assert heights == pytest.approx([0.4, 0.2, 0.1, 0.25, 0.05])
    labels = right.get_legend_handles_labels()[1]
    assert "SVE scatter" in labels and "surrogate (epistemic)" in labels and "interactions" in labels


# --------------------------------------------------------------------------- validation


def _predictions(n: int = 200, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mean = rng.normal(size=n)
    y = mean + rng.normal(size=n)
    return pd.DataFrame({"model": "gpr", "target": "log_conductivity_eigenvalues_0", "fold": np.arange(n) % 5,
                         "y": y, "mean": mean, "std": np.full(n, scale)})


@pytest.mark.parametrize("scale", [1.0, 0.4])
def test_calibration_figure_marks_the_levels_and_verdict_of_the_check(scale: float) -> None:
    pred = _predictions(scale=scale)
    fig = F.calibration_figure(pred, "gpr", "log_conductivity_eigenvalues_0")
    ax = fig.axes[0]
    chk = calibration_check(pred["y"], pred["mean"], pred["std"], alpha=0.01)
    assert ("check passed" if chk.passed else "check failed") in ax.get_title()
    marked = np.sort(np.concatenate([line.get_xdata() for line in ax.lines
                                     if line.get_label().startswith("checked level")]))
    np.testing.assert_allclose(marked, chk.levels)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "pointwise binomial 95 % band" in labels
    assert any(lab.startswith("acceptance band of the check") for lab in labels)
    assert len(F.calibration_figure(pred, "gpr", "log_conductivity_eigenvalues_0", check_alpha=None)
               .axes[0].get_legend().get_texts()) == 3


def test_parity_axes_name_the_target_with_its_unit() -> None:
    fig = F.parity_figure(_predictions(), "gpr", "log_conductivity_eigenvalues_0")
    # long labels are wrapped to the axes: compare them as one line
    assert _line(fig.axes[0].get_xlabel()) == "observed ln conductivity eigenvalue 0 (smallest) [–]"
    assert _line(fig.axes[0].get_ylabel()).startswith("predicted ln conductivity eigenvalue 0 (smallest) [–]")


def _leakage() -> pd.DataFrame:
    return pd.DataFrame({"model": "gpr", "target": "conductivity_0_0", "metric": ["coverage_0.95", "nlpd", "rmse"],
                         "output": 0, "naive": [0.93, -0.4, 0.2], "grouped": [0.85, 0.3, 0.3],
                         "optimism": [-0.08, 0.7, 0.1], "ratio": [0.91, 2.0, 1.5]})


def test_leakage_has_one_panel_per_metric_with_its_own_axis() -> None:
    fig = F.leakage_figure(_leakage(), "gpr", "conductivity_0_0")
    panels = [ax for ax in fig.axes if ax.patches]
    assert [ax.get_ylabel() for ax in panels] == ["RMSE [phase units]", "NLPD [nats]",
                                                  "coverage of the 95% interval [–]"]
    assert [line.get_ydata()[0] for line in panels[2].lines] == [0.95]
    assert min(p.get_height() for p in panels[1].patches) == pytest.approx(-0.4)


def _degradation() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A degradation table (in-distribution test set and two OOD shells) and its validation table."""
    rows = []
    for split, d, cov, nlpd, rmse in (("test", 0.0, 0.95, 1.0, 0.4), ("ood_1", 0.2, 0.7, 2.0, 1.6),
                                      ("ood_2", 0.6, 0.9, 1.5, 1.0)):
        rows += [("gpr", "t", split, "coverage_0.95", "0", d, cov, 0.95, cov / 0.95),
                 ("gpr", "t", split, "nlpd", "0", d, nlpd, 1.0, np.exp(nlpd - 1.0)),
                 ("gpr", "t", split, "rmse", "0", d, rmse, 0.4, rmse / 0.4)]
    deg = pd.DataFrame(rows, columns=["model", "target", "split", "metric", "output", "distance", "value",
                                      "reference_value", "ratio"])
    val = pd.DataFrame({"model": "gpr", "target": "t", "fold": [0, 0, 1, 1, 1], "n": [9, 99, 4, 14, 6],
                        "split": ["train", "test", "test", "ood_1", "ood_2"], "distance": 0.0,
                        "metric": "rmse", "output": 0, "value": 0.0})
    return deg, val


def test_degradation_draws_coverage_itself_and_counts_per_shell() -> None:
    deg, val = _degradation()
    fig = F.degradation_figure(deg, "gpr", "t", validation=val)
    rmse, nlpd, cov = fig.axes
    assert cov.get_ylabel() == "coverage of the 95% interval [–]"
    ys = np.concatenate([line.get_ydata() for line in cov.lines if line.get_marker() in ("o", "s")])
    np.testing.assert_allclose(np.sort(ys), [0.7, 0.9, 0.95])
    assert any(np.allclose(line.get_ydata(), 0.95) and line.get_linestyle() == "--" for line in cov.lines)
    assert _line(nlpd.get_ylabel()) == "density ratio exp(ΔNLPD) [–] ΔNLPD = NLPD(OOD) − NLPD(ID)"
    assert _line(nlpd.get_title()) == "density ratio exp(ΔNLPD) (above 1: worse)"
    assert rmse.get_ylabel() == "RMSE ratio OOD / in-distribution [–]"
    # the counts, once (first panel): the OOD fold's test set has 4 points
    assert sorted(t.get_text() for t in rmse.texts) == ["n=14", "n=4", "n=6"]
    assert not nlpd.texts and not cov.texts


def _ood_table() -> pd.DataFrame:
    """A table shaped like stochhom.validation.ood_evaluation's: the reference (in the box) and two
    shells, each metric with its interval and its ratio to the reference (the reference's own
    ratio is 1 without an interval)."""
    nan = np.nan
    return pd.DataFrame({
        "model": "gpr", "target": "conductivity_0_0", "split": ["reference", "shell_1", "shell_2"],
        "distance_low": [0.0, 0.0, 0.25], "distance_high": [0.0, 0.25, np.inf], "distance_mean": [0.0, 0.12, 0.6],
        "n_samples": [120, 45, 30], "n_groups": [40, 15, 10], "n_predictions": [120, 225, 150],
        "rmse": [0.1, 0.15, 0.3], "rmse_low": [0.08, 0.12, 0.22], "rmse_high": [0.12, 0.19, 0.4],
        "rmse_ratio": [1.0, 1.5, 3.0], "rmse_ratio_low": [nan, 1.1, 2.1], "rmse_ratio_high": [nan, 2.0, 4.2],
        "nlpd": [-0.5, 0.0, 1.2], "nlpd_low": [-0.6, -0.2, 0.8], "nlpd_high": [-0.4, 0.3, 1.7],
        "nlpd_ratio": np.exp([0.0, 0.5, 1.7]), "nlpd_ratio_low": [nan, np.exp(0.2), np.exp(1.2)],
        "nlpd_ratio_high": [nan, np.exp(0.9), np.exp(2.3)],
        "coverage_0.95": [0.94, 0.85, 0.6], "coverage_0.95_low": [0.9, 0.75, 0.45],
        "coverage_0.95_high": [0.97, 0.93, 0.73], "coverage_0.95_ratio": [1.0, 0.85 / 0.94, 0.6 / 0.94],
        "coverage_0.95_ratio_low": [nan, 0.8, 0.5], "coverage_0.95_ratio_high": [nan, 1.0, 0.8]})


def test_ood_figure_has_a_panel_per_metric_counts_a_square_reference_and_nominal_coverage() -> None:
    """One panel per metric (RMSE and NLPD as ratios to the reference, coverage as itself), the
    sample count of each set written once, the reference a square at distance 0 (ratio 1, no
    interval), the shells' intervals from the table, and the coverage's nominal 0.95 dashed."""
    fig = F.ood_figure(_ood_table(), "gpr", "conductivity_0_0")
    rmse, nlpd, cov = fig.axes
    assert rmse.get_ylabel() == "RMSE ratio to the reference [–]"
    assert _line(nlpd.get_ylabel()) == "density ratio exp(ΔNLPD) [–] ΔNLPD = NLPD(shell) − NLPD(ref.)"
    assert cov.get_ylabel() == "coverage of the 95% interval [–]"
    assert sorted(t.get_text() for t in rmse.texts) == ["n=120", "n=30", "n=45"]  # once, in the first panel
    assert not nlpd.texts and not cov.texts
    for ax, ref_value, shells in ((rmse, 1.0, [1.5, 3.0]), (nlpd, 1.0, np.exp([0.5, 1.7])),
                                  (cov, 0.94, [0.85, 0.6])):
        square = [line for line in ax.lines if line.get_marker() == "s"]
        assert len(square) == 1
        np.testing.assert_allclose(square[0].get_xdata(), [0.0])
        np.testing.assert_allclose(square[0].get_ydata(), [ref_value])
        dots = [line for line in ax.lines if line.get_marker() == "o"]
        np.testing.assert_allclose(np.concatenate([d.get_ydata() for d in dots]), shells)
    # coverage is drawn as itself with its nominal level; the ratios against "no degradation" at 1
    assert any(np.allclose(line.get_ydata(), 0.95) and line.get_linestyle() == "--" for line in cov.lines)
    assert not any(np.allclose(line.get_ydata(), 1.0) and line.get_linestyle() == "--" for line in cov.lines)
    assert any(np.allclose(line.get_ydata(), 1.0) and line.get_linestyle() == "--" for line in rmse.lines)
    # error bars: the shells' intervals from the table, none for the reference's ratio
    segments = rmse.containers[0].lines[2][0].get_segments()
    np.testing.assert_allclose([s[:, 1] for s in segments], [[1.0, 1.0], [1.1, 2.0], [2.1, 4.2]])
    cov_segments = cov.containers[0].lines[2][0].get_segments()
    np.testing.assert_allclose([s[:, 1] for s in cov_segments], [[0.9, 0.97], [0.75, 0.93], [0.45, 0.73]])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "in the box (reference)" in labels and "nominal 0.95" in labels
    # a metric missing from the table has no panel
    table = _ood_table()
    fewer = F.ood_figure(table.drop(columns=[c for c in table.columns if c.startswith("nlpd")]), "gpr",
                         "conductivity_0_0")
    assert [ax.get_title() for ax in fewer.axes] == ["RMSE ratio (above 1: worse)", "coverage (not a ratio)"]
    with pytest.raises(InputError, match="no rows"):
        F.ood_figure(table, "pce", "conductivity_0_0")


def _far_ood_table() -> pd.DataFrame:
    """An OOD table whose far shell's RMSE ratio is 50 (interval up to 100), with two shells close
    to the reference, as in a study run far outside its box."""
    t = _ood_table()
    far = t.iloc[[2]].assign(split="shell_3", distance_low=0.25, distance_high=np.inf, distance_mean=0.45,
                             n_samples=80, rmse_ratio=50.0, rmse_ratio_low=19.0, rmse_ratio_high=100.0,
                             crps_ratio=35.0)
    t = pd.concat([t, far], ignore_index=True)
    t.loc[1, "distance_mean"], t.loc[2, "distance_mean"] = 0.03, 0.15
    t["crps"] = [0.05, 0.07, 0.12, 1.7]
    t["crps_ratio"] = [1.0, 1.4, 2.5, 35.0]
    t["crps_ratio_low"], t["crps_ratio_high"] = [np.nan, 1.0, 1.5, 9.0], [np.nan, 2.0, 4.0, 80.0]
    return t


def _count_texts(ax) -> list:
    return [t for t in ax.texts if t.get_text().startswith("n=")]


def _assert_counts_clear_of_the_data(ax, values: np.ndarray) -> None:
    """Every count label lies above the highest point or interval end and the reference line at 1
    (in pixels, after a draw), inside the panel's width."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    highest = ax.transData.transform((0.0, float(np.nanmax(np.append(values, 1.0)))))[1] + 3.0  # marker radius
    box = ax.get_window_extent(renderer)
    texts = _count_texts(ax)
    assert texts
    for t in texts:
        bb = t.get_window_extent(renderer)
        assert bb.y0 > highest, t.get_text()
        assert box.x0 - 1 <= bb.x0 and bb.x1 <= box.x1 + 1, t.get_text()


def test_ood_ratio_panels_beyond_10_are_logarithmic_and_counts_stay_clear() -> None:
    """A ratio (or interval end) above 10 puts its panel on a log axis, so that the near shells are
    not flattened; ratios below stay linear. The counts stand in a row at the top of the first
    panel, above every point, interval end and the reference line, apart from each other."""
    fig = F.ood_figure(_far_ood_table(), "gpr", "conductivity_0_0")
    rmse, nlpd, crps, cov = fig.axes
    assert rmse.get_yscale() == "log" and crps.get_yscale() == "log"
    assert nlpd.get_yscale() == "linear" and cov.get_yscale() == "linear"  # ends ≤ exp(2.3) < 10
    assert isinstance(rmse.yaxis.get_minor_formatter(), NullFormatter)
    assert sorted(t.get_text() for t in _count_texts(rmse)) == ["n=120", "n=30", "n=45", "n=80"]
    _assert_counts_clear_of_the_data(rmse, np.array([1.0, 2.0, 4.2, 100.0]))
    assert F.text_overlaps(fig) == []
    # the small table: linear, and its counts also above the intervals and the reference
    small = F.ood_figure(_ood_table(), "gpr", "conductivity_0_0")
    assert small.axes[0].get_yscale() == "linear"
    _assert_counts_clear_of_the_data(small.axes[0], np.array([1.0, 2.0, 4.2]))


def test_nlpd_panel_title_and_axis_name_the_same_density_ratio_and_its_direction() -> None:
    """The ΔNLPD panel shows exp(ΔNLPD): its title says so (not ΔNLPD itself), as its axis does,
    and says which side is worse."""
    for fig in (F.ood_figure(_ood_table(), "gpr", "conductivity_0_0"),
                F.degradation_figure(_degradation()[0], "gpr", "t")):
        nlpd = fig.axes[1]
        title, ylabel = _line(nlpd.get_title()), _line(nlpd.get_ylabel())
        assert "exp(ΔNLPD)" in title and "above 1: worse" in title
        assert title.split(" (")[0] == "density ratio exp(ΔNLPD)" and ylabel.startswith("density ratio exp(ΔNLPD)")


def test_degradation_ratios_beyond_10_are_logarithmic() -> None:
    deg, val = _degradation()
    deg.loc[deg["metric"] == "rmse", "ratio"] = [1.0, 50.0, 3.0]
    fig = F.degradation_figure(deg, "gpr", "t", validation=val)
    rmse, nlpd, cov = fig.axes
    assert rmse.get_yscale() == "log" and nlpd.get_yscale() == "linear" and cov.get_yscale() == "linear"
    _assert_counts_clear_of_the_data(rmse, np.array([1.0, 50.0, 3.0]))
    assert_readable(fig)


def test_leakage_metrics_are_in_the_declared_unit() -> None:
    leak = pd.concat([_leakage(), _leakage().iloc[[2]].assign(metric="crps", naive=0.1, grouped=0.15)])
    fig = F.leakage_figure(leak, "gpr", "conductivity_0_0", units=Units(conductivity="W/m/K"))
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels[:3] == ["RMSE [W/m/K]", "CRPS [W/m/K]", "NLPD [nats]"]


# --------------------------------------------------------------------------- propagation


def _skewed(seed: int, n: int = 3000) -> np.ndarray:
    """Positive, skewed samples above the matrix conductivity 1, spanning more than a factor 20."""
    return 1.0 + np.random.default_rng(seed).lognormal(0.5, 1.0, n)


def test_propagation_density_stays_in_the_samples_range_and_is_never_negative() -> None:
    """The KDE is evaluated only over [min, max] of the samples (nothing below the matrix value 1
    nor at or below 0), from ln y for positive samples; a span above 20 gives a log x-axis."""
    samples = {"gpr": _skewed(0), "pce": _skewed(1)}
    fig = F.propagation_figure(samples, "conductivity_eigenvalues_1", means={"gpr": 3.0, "pce": 3.2})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    for model, y in samples.items():
        (kde,) = [line for line in ax.lines if line.get_gid() == f"kde:{model}"]
        x, d = kde.get_xdata(), kde.get_ydata()
        assert x.min() >= y.min() and x.max() <= y.max()
        assert x.min() > 1.0 and np.all(d >= 0) and np.all(np.isfinite(d))
        assert np.trapezoid(d, x) == pytest.approx(1.0, abs=0.05)  # a density over the samples' range
    # a narrow positive distribution: linear axis, still inside the samples' range
    narrow = F.propagation_figure({"gpr": np.random.default_rng(2).lognormal(1.0, 0.1, 500)}, "bulk_modulus")
    (kde,) = [line for line in narrow.axes[0].lines if line.get_gid() == "kde:gpr"]
    assert narrow.axes[0].get_xscale() == "linear" and np.all(kde.get_ydata() >= 0)
    # an ln target may be negative: a plain KDE, inside the range too
    y = np.random.default_rng(3).normal(-0.5, 1.0, 500)
    ln = F.propagation_figure({"gpr": y}, "log_bulk_modulus").axes[0]
    (kde,) = [line for line in ln.lines if line.get_gid() == "kde:gpr"]
    assert ln.get_xscale() == "linear" and kde.get_xdata().min() >= y.min() and kde.get_xdata().max() <= y.max()


def test_propagation_histograms_are_steps_and_means_are_told_apart() -> None:
    """Step histograms (no filled areas mixing into a third colour); each model's mean in its own
    colour and its own dash pattern, both in the legend."""
    fig = F.propagation_figure({"gpr": _skewed(0), "pce": _skewed(1), "mlp": _skewed(2)},
                               "conductivity_eigenvalues_0", means={"gpr": 3.0, "pce": 3.0, "mlp": 3.1})
    ax = fig.axes[0]
    assert ax.patches and all(not p.get_fill() for p in ax.patches)
    means = [line for line in ax.lines if (line.get_gid() or "").startswith("mean:")]
    assert len(means) == 3
    assert len({tuple(np.round(line.get_color() if not isinstance(line.get_color(), str) else
                               __import__("matplotlib").colors.to_rgba(line.get_color()), 3))
                for line in means}) == 3
    assert len({line._unscaled_dash_pattern for line in means}) == 3
    kdes = [line for line in ax.lines if (line.get_gid() or "").startswith("kde:")]
    for kde, mean in zip(kdes, means):
        assert kde.get_color() == mean.get_color()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "gpr mean = 3" in labels and "mlp mean = 3.1" in labels
    assert_readable(fig)


# --------------------------------------------------------------------------- readability and units


def _elastic_props(rng: int = 0) -> xr.Dataset:
    """A synthetic 2D elasticity dataset over a 3 × 2 grid of (contrast, volume fraction), 3 replicates."""
    gen = np.random.default_rng(rng)
    grid = [(c, f) for c in (2.0, 20.0, 200.0) for f in (0.3, 0.5)]
    c, f = (np.repeat([g[k] for g in grid], 3) for k in (0, 1))
    n = c.size
    bulk = (1 + f * np.sqrt(c)) * np.exp(0.05 * gen.standard_normal(n))
    shear = 0.5 * bulk * np.exp(0.05 * gen.standard_normal(n))
    stiffness = np.zeros((n, 3, 3))
    stiffness[:, 0, 0] = stiffness[:, 1, 1] = bulk + shear
    stiffness[:, 2, 2] = 2 * shear
    data = {"stiffness": (("sample", "i", "j"), stiffness), "bulk_modulus": ("sample", bulk),
            "shear_modulus": ("sample", shear), "converged": ("sample", np.ones(n, np.int8))}
    coords = {"sample": np.arange(n), "contrast": ("sample", c), "volume_fraction": ("sample", f),
              "point": ("sample", np.repeat(np.arange(len(grid)), 3))}
    return xr.Dataset(data, coords=coords, attrs={"dim": 2, "physics": "elasticity", "voxel_size": 1.0})


def _sobol_shares() -> dict:
    shares = {"input": 0.7, "aleatoric": 0.25, "epistemic": 0.05, "unsplit": 0.0}
    return {m: {"names": ["volume_fraction", "contrast"], "first": [0.4, 0.2], "total": [0.45, 0.28],
                "first_ci": [[0.35, 0.15], [0.45, 0.25]], "total_ci": [[0.4, 0.2], [0.5, 0.33]], "shares": shares}
            for m in ("gpr", "pce")}


def _gallery_ensemble(n: int = 7) -> xr.Dataset:
    return sh.generate("gaussian", (16, 16), n=n, rng=0, volume_fraction=0.4, correlation_length=2.0)


def _log_props() -> xr.Dataset:
    props = _props([2.0, 400.0], replicates=2, rng=3)
    props["conductivity"][0, 0, 0] = props["conductivity"][0, 1, 1] = 0.05  # an interval reaching below 0
    return props


#: Every figure function on the synthetic inputs of this module, with and without declared units.
FIGURES = {
    "gallery": lambda u: F.gallery_figure(_gallery_ensemble(), units=u),
    "gallery_3d": lambda u: F.gallery_figure(sh.generate("boolean", (12, 12, 12), n=2, rng=3, volume_fraction=0.2,
                                                         radius=2.0), units=u),
    "s2": lambda u: F.s2_figure(sh.generate("boolean", (24, 24), n=2, rng=1, volume_fraction=0.3, radius=2.0),
                                units=u),
    "s2_groups": lambda u: F.s2_figure(xr.concat(
        [sh.generate("gaussian", (16, 16), n=2, rng=k, volume_fraction=0.4, correlation_length=ell)
         .assign_coords(correlation_length=("sample", [ell, ell])) for k, ell in enumerate((1.5, 3.0))],
        dim="sample").assign_coords(sample=np.arange(4)), units=u),
    "properties": lambda u: F.properties_figure(_props([2.0, 5.0, 9.0]), PHASES, units=u),
    "properties_log_cut": lambda u: F.properties_figure(_log_props(), PHASES, units=u),
    "properties_no_bounds": lambda u: F.properties_figure(_props([2.0, 50.0], with_fractions=False), PHASES, units=u),
    "properties_elastic_grid": lambda u: F.properties_figure(_elastic_props(), units=u),
    "rve": lambda u: F.rve_figure(_rve([40] * 4), dim=2, voxel_size=1.0, units=u),
    "rve_counts": lambda u: F.rve_figure(_rve([40, 30, 20, 10]), dim=3, voxel_size=0.5, units=u),
    "propagation": lambda u: F.propagation_figure(
        {"gpr": np.random.default_rng(0).lognormal(1.0, 0.3, 2000),
         "pce": np.random.default_rng(1).lognormal(1.0, 0.3, 2000)}, "conductivity_eigenvalues_0",
        means={"gpr": 2.9, "pce": 2.8}, units=u),
    "sobol_cut": lambda u: F.sobol_figure(
        {"gpr": {"names": ["volume_fraction", "contrast"], "first": [0.6, 0.3], "total": [0.7, 0.4],
                 "first_ci": [[0.5, -3e6], [0.7, 0.5]], "total_ci": [[0.6, 0.3], [0.8, 0.5]]},
         "pce": {"names": ["volume_fraction", "contrast"], "first": [0.62, 0.31], "total": [0.68, 0.38]}},
        "log_conductivity_0_0", units=u),
    "sobol_shares": lambda u: F.sobol_figure(_sobol_shares(), "conductivity_eigenvalues_0", units=u),
    "parity": lambda u: F.parity_figure(_predictions(), "gpr", "log_conductivity_eigenvalues_0", units=u),
    "calibration": lambda u: F.calibration_figure(_predictions(scale=0.4), "gpr", "log_conductivity_eigenvalues_0",
                                                  units=u),
    "leakage": lambda u: F.leakage_figure(_leakage(), "gpr", "conductivity_0_0", units=u),
    "degradation": lambda u: F.degradation_figure(*_degradation()[:1], "gpr", "t", validation=_degradation()[1],
                                                  units=u),
    "ood": lambda u: F.ood_figure(_ood_table(), "gpr", "conductivity_0_0", units=u),
    "ood_far": lambda u: F.ood_figure(_far_ood_table(), "gpr", "conductivity_0_0", units=u),
    "propagation_log": lambda u: F.propagation_figure({"gpr": _skewed(0), "pce": _skewed(1)},
                                                      "conductivity_eigenvalues_1", units=u),
    "properties_far_bounds": lambda u: F.properties_figure(
        _props([2.0, 5.0, 9.0]), [sh.Conductivity(1.0), sh.Conductivity(500.0)], units=u),
}

DECLARED = Units(length="um", modulus="GPa", conductivity="W/m/K")


def _slot(fig: Figure) -> float:
    """Width (px) of the report's slot of a figure: one column up to 6.5 in, else the page."""
    return 640.0 if fig.get_figwidth() <= 6.5 else 1300.0


def assert_readable(fig: Figure) -> None:
    """Every text of ``fig`` stands free inside it and renders at 10 px or more in the report,
    which shows the figure ``100 w`` px wide (``w`` its width in inches), shrunk to its slot
    when wider: the smallest font (px at 100 px/in) must be at least 10 × max(1, 100 w / slot)."""
    assert F.text_overlaps(fig) == []
    width = fig.get_figwidth() * F.DISPLAY_PPI
    assert F.min_font_px(fig) >= 10.0 * max(1.0, width / _slot(fig))
    assert fig.get_figwidth() <= F.PAGE_WIDTH


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_visible())]


@pytest.mark.parametrize("units", [None, DECLARED], ids=["undeclared", "declared"])
@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_is_readable_at_its_displayed_size(name: str, units: Units | None) -> None:
    """No text overlaps another or leaves the figure, every font renders at 10 px or more, and no
    placeholder unit ("length", "length^d") is left on any axis."""
    fig = FIGURES[name](units)
    assert_readable(fig)
    assert not [t for t in _texts(fig) if "[length" in t or "length^" in t or "length³" in t or "length²" in t]


def test_text_overlaps_finds_overlapping_crowded_and_escaping_texts() -> None:
    """The check can fail: two texts on top of each other, tick labels that collide and a title
    wider than the figure are each reported; a clean figure is not."""
    fig = Figure(figsize=(3.0, 2.0), layout="constrained")
    ax = fig.add_subplot()
    ax.text(0.4, 0.5, "first text")
    ax.text(0.45, 0.5, "second text")
    found = F.text_overlaps(fig)
    assert any("'first text' overlaps" in f and "'second text'" in f for f in found)
    fig = Figure(figsize=(3.0, 2.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xticks(np.arange(40) * 1000.0)
    ax.set_title("a title far too long for a figure that is only three inches wide")
    found = F.text_overlaps(fig)
    assert any(f.startswith("x tick label") and "x tick label" in f.split("overlaps")[-1] for f in found)
    assert any(f.startswith("title") and "sticks out of the figure" in f for f in found)
    fig = Figure(figsize=(4.0, 3.0), layout="constrained")
    fig.add_subplot().set_title("short")
    assert F.text_overlaps(fig) == []


def test_min_font_px_is_the_smallest_visible_font_at_100_px_per_inch() -> None:
    fig = Figure(figsize=(4.0, 3.0))
    ax = fig.add_subplot()
    ax.tick_params(labelsize=12)
    ax.set_title("title", fontsize=14)
    ax.text(0.5, 0.5, "note", fontsize=7.2)
    ax.text(0.5, 0.2, "hidden", fontsize=3, visible=False)
    ax.text(0.5, 0.2, "", fontsize=2)
    assert F.min_font_px(fig) == pytest.approx(10.0)  # 7.2 pt × 100/72
    with pytest.MonkeyPatch.context() as m:
        m.setattr(ax.texts[0], "get_fontsize", lambda: 9.0)
        assert F.min_font_px(fig) == pytest.approx(12.5)


@pytest.mark.parametrize("n", range(1, 8))
def test_gallery_grid_fits_the_number_of_samples(n: int) -> None:
    """n images on a grid of up to 4 columns with as few rows as that allows and fewer empty
    panels than rows (4 → 1 × 4, 5 → 2 × 3, 7 → 2 × 4), every image square."""
    fig = F.gallery_figure(_gallery_ensemble(), max_samples=n)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == n and len(fig.axes) == n  # no empty panel is left on the figure
    rows, cols = images[0].get_subplotspec().get_gridspec().get_geometry()
    empty = rows * cols - n
    assert empty <= cols - 1 and empty < rows
    assert rows == -(-n // 4)
    assert all(ax.get_aspect() == 1.0 for ax in images)
    assert_readable(fig)


def test_units_are_on_the_axes() -> None:
    """Declared units label every axis (µm² for a 2D SVE volume, GPa for a modulus, W/m/K for a
    conductivity); undeclared, lengths are in voxels and properties in phase units."""
    u = Units(length="um", modulus="GPa")
    assert F.rve_figure(_rve([40] * 4), dim=2, voxel_size=1.0, units=u).axes[0].get_xlabel() == "SVE volume V [µm²]"
    assert F.rve_figure(_rve([40] * 4), dim=3, units=u).axes[0].get_xlabel() == "SVE volume V [µm³]"
    assert F.rve_figure(_rve([40] * 4), dim=2, voxel_size=1.0).axes[0].get_xlabel() == "SVE volume V [voxels²]"
    rve = F.rve_figure(_rve([40] * 4), dim=2, units=Units(conductivity="W/m/K"))
    assert rve.axes[0].get_ylabel() == "variance D²(V) [(W/m/K)²]"
    elastic = F.properties_figure(_elastic_props(), units=u)
    ylabels = {_line(ax.get_ylabel()) for ax in elastic.axes}
    assert ylabels == {"plane-strain bulk modulus κ [GPa]", "shear modulus G [GPa]"}
    assert {_line(ax.get_xlabel()) for ax in elastic.axes} == {"phase contrast [–]", "volume fraction φ [–]"}
    assert {_line(ax.get_ylabel()) for ax in F.properties_figure(_elastic_props()).axes} == {
        "plane-strain bulk modulus κ [phase units]", "shear modulus G [phase units]"}
    assert F.axis_label("bulk_modulus", 3, units=u) == "bulk modulus K [GPa]"
    assert F.axis_label("correlation_length", units=u) == "correlation length ℓ [µm]"
    assert F.axis_label("correlation_length") == "correlation length ℓ [voxels]"
    assert F.axis_label("size", units=u) == "SVE edge length [voxels]"  # an edge is a number of voxels
    assert F.target_unit("conductivity_0_0", Units(conductivity="W/m/K")) == "W/m/K"
    assert F.target_unit("log_conductivity_0_0", Units(conductivity="W/m/K")) == "–"
    ens = sh.generate("boolean", (24, 24), n=2, rng=1, volume_fraction=0.3, radius=2.0)
    assert F.gallery_figure(ens, units=u).axes[0].get_xlabel() == "x [µm]"
    assert F.gallery_figure(ens).axes[0].get_xlabel() == "x [voxels]"
    assert F.s2_figure(ens, units=u).axes[0].get_xlabel() == "distance r [µm]"
    k = Units(conductivity="W/m/K")
    assert _line(F.parity_figure(_predictions().assign(target="conductivity_0_0"), "gpr", "conductivity_0_0",
                                 units=k).axes[0].get_xlabel()) == "observed conductivity k₀₀ [W/m/K]"
    leak = F.leakage_figure(_leakage(), "gpr", "conductivity_0_0", units=k)
    assert "RMSE [W/m/K]" in [ax.get_ylabel() for ax in leak.axes]
    prop = F.propagation_figure({"gpr": np.linspace(1, 2, 50)}, "conductivity_0_0", units=k).axes[0]
    assert prop.get_xlabel() == "conductivity k₀₀ [W/m/K]" and prop.get_ylabel() == "probability density [1/(W/m/K)]"


def test_properties_have_one_legend_and_the_panels_of_a_property_share_its_range() -> None:
    fig = F.properties_figure(_elastic_props())
    assert len(fig.legends) == 1 and not [ax for ax in fig.axes if ax.get_legend() is not None]
    assert len(fig.axes) == 4
    rows = {}
    for ax in fig.axes:
        rows.setdefault(_line(ax.get_ylabel()), []).append(ax.get_ylim())
    assert all(np.allclose(lims, lims[0]) for lims in rows.values())
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.count("samples") == 1 and any(lab.startswith("mean ±") for lab in labels)


def test_label_dimension_names_the_largest_eigenvalue_inside_its_context_only() -> None:
    from stochhom.report.figures import label_dimension, target_label

    assert target_label("conductivity_eigenvalues_1") == "conductivity eigenvalue 1 (sorted ascending)"
    with label_dimension(2):
        assert target_label("conductivity_eigenvalues_1") == "conductivity eigenvalue 1 (largest)"
        assert target_label("conductivity_eigenvalues_1", dim=3) == "conductivity eigenvalue 1 (sorted ascending)"
    assert target_label("conductivity_eigenvalues_1") == "conductivity eigenvalue 1 (sorted ascending)"
