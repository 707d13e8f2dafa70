"""Random-set models fitted to one specimen: the level-cut S2 formula against the bivariate
normal law, and the fits recovering the parameters of samples drawn from the models."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

import stochhom as sh
from stochhom.errors import InputError
from stochhom.microstructure.fitting import fit_boolean, fit_gaussian, goodness_of_fit, level_cut_s2


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.35, 0.95])
@pytest.mark.parametrize("phi", [0.2, 0.5])
def test_level_cut_s2_is_the_bivariate_normal_law(rho, phi):
    a = norm.ppf(phi)
    exact = multivariate_normal([0, 0], [[1, rho], [rho, 1]]).cdf([a, a])
    assert abs(level_cut_s2(a, np.array(rho)) - exact) < 1e-8


@pytest.mark.parametrize("ell", [3.0, 5.0])
def test_gaussian_fit_recovers_the_correlation_length(ell):
    # one 128^2 sample: measured 2.93 and 3.15 for ell = 3, 4.94 and 5.18 for ell = 5 (seeds 0, 1);
    # the scatter of one sample's S2 is a few per cent, hence 10 %
    image = sh.generate("gaussian", (128, 128), 1, rng=0, volume_fraction=0.3, correlation_length=ell)
    p = fit_gaussian(image["phase"].values[0])
    assert abs(p["correlation_length"] / ell - 1) < 0.1
    assert abs(p["volume_fraction"] - 0.3) < 0.05 and p["model"] == "gaussian"


@pytest.mark.parametrize(("shape", "radius"), [((160, 160), 4.0), ((160, 160), 6.0), ((48, 48, 48), 5.0)])
def test_boolean_fit_recovers_the_radius(shape, radius):
    # Miles' formulas on the voxelized specimen: measured 4.11, 6.27 and 5.28 (the staircase
    # lengthens the interface of small balls by a few per cent); 10 % allowed
    image = sh.generate("boolean", shape, 1, rng=3, volume_fraction=0.3, radius=radius)
    p = fit_boolean(image["phase"].values[0])
    assert abs(p["radius"] / radius - 1) < 0.1


def test_goodness_of_fit_of_a_model_to_its_own_sample():
    image = sh.generate("gaussian", (96, 96), 1, rng=9, volume_fraction=0.4, correlation_length=4.0)
    arr = image["phase"].values[0]
    p = fit_gaussian(arr)
    g = goodness_of_fit(arr, "gaussian", p, n=8, rng=1)
    assert g["s2_z_max"] < 4.0 and g["lineal_z_max"] < 4.0  # measured 1.05 and 0.95
    assert abs(g["mean_chord_specimen"] - g["mean_chord_mean"]) < 3 * g["mean_chord_std"]
    assert g["s2_specimen"].sizes["r"] == g["s2_mean"].sizes["r"] > 10


def test_goodness_of_fit_rejects_a_wrong_model():
    """Discs of radius 6 against a Boolean model of radius 2 at the same fraction: the
    specimen's S2 and lineal path leave the model's spread (measured 8.9 and 61 standard
    deviations), while the right radius passes (0.61 and 0.61)."""
    b = sh.generate("boolean", (96, 96), 1, rng=3, volume_fraction=0.3, radius=6.0)["phase"].values[0]
    wrong = goodness_of_fit(b, "boolean", {"volume_fraction": 0.3, "radius": 2.0}, n=8, rng=1)
    right = goodness_of_fit(b, "boolean", {"volume_fraction": 0.3, "radius": 6.0}, n=8, rng=1)
    assert wrong["s2_z_max"] > 4.0 and wrong["lineal_z_max"] > 4.0
    assert right["s2_z_max"] < 3.0 and right["lineal_z_max"] < 3.0


def test_fits_refuse_a_single_phase():
    with pytest.raises(InputError, match="no interface"):
        fit_boolean(np.zeros((16, 16), dtype=np.uint8))
    with pytest.raises(InputError, match="no interface"):
        fit_gaussian(np.ones((16, 16), dtype=np.uint8))


# ----------------------------------------------------------------------------- [generator] fit
def _scan_study(tmp_path, name, fit, **extra):
    from pathlib import Path

    from stochhom.study import study_from_dict

    scan = Path(__file__).parents[1] / "examples" / "scan_2d.tif"
    data = {
        "study": {"output": str(tmp_path / "o.zarr"), "seed": 1},
        "generator": {"name": name, "shape": [32, 32], "fit": fit if fit != "scan" else {"path": str(scan),
                                                                                      "threshold": "otsu"},
                      **extra},
        "sweep": {"parameters": {"contrast": [2.0, 5.0]}},
        "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
    }
    return study_from_dict(data, base=tmp_path)


def test_study_takes_boolean_parameters_from_the_shipped_scan(tmp_path):
    # the scan shows disks of radius 5 px (examples/make_examples.py); the fit finds 5.09
    study = _scan_study(tmp_path, "boolean", "scan")
    assert abs(study.fixed["radius"] - 5.0) < 0.5
    assert 0.25 < study.fixed["volume_fraction"] < 0.32
    assert study.fit["segmentation"] and study.fit["path"].endswith("scan_2d.tif")
    given = _scan_study(tmp_path, "boolean", "scan", radius=3.0)  # a given parameter wins over the fit
    assert given.fixed["radius"] == 3.0 and given.fixed["volume_fraction"] == study.fixed["volume_fraction"]


def test_study_fit_refusals(tmp_path):
    from stochhom.study import StudyError

    with pytest.raises(StudyError, match="fits 'gaussian'"):
        _scan_study(tmp_path, "rsa", "scan")
    with pytest.raises(StudyError, match='threshold = "otsu"'):  # a grey scan without a threshold
        _scan_study(tmp_path, "gaussian", str(__import__("pathlib").Path(__file__).parents[1] / "examples"
                                              / "scan_2d.tif"))
    with pytest.raises(StudyError, match=r"does not exist|No such|not found"):
        _scan_study(tmp_path, "gaussian", "missing.tif")
