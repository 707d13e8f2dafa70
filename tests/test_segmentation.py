"""Grey-level scans to labels: Otsu and given thresholds, cropping, block-mean downsampling,
and load_specimens on segmented scans."""

from __future__ import annotations

import json

import numpy as np
import pytest

import stochhom as sh
from stochhom.errors import InputError
from stochhom.microstructure import load_specimens, segment
from stochhom.microstructure.segmentation import downsample_mean


def _scan(seed: int = 0, noise: float = 15.0):
    truth = sh.microstructure.GENERATORS["boolean"].func((64, 64), np.random.default_rng(seed), volume_fraction=0.35,
                                                          radius=5.0)
    rng = np.random.default_rng(seed + 1)
    grey = 60.0 + 120.0 * truth + rng.normal(0.0, noise, truth.shape)
    return truth, grey


def test_otsu_recovers_a_noisy_two_phase_scan():
    # peaks 120 apart with noise 15 (4 sigma each side): Otsu's level lies between the
    # peaks and misclassifies about Phi(-4) of the voxels
    truth, grey = _scan()
    labels, levels = segment(grey)
    assert 100 < levels[0] < 140
    assert np.mean(labels == truth) > 0.999
    inverted, _ = segment(grey, invert=True)
    assert np.array_equal(inverted, 1 - labels)


def test_multi_otsu_and_given_levels_make_three_phases():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, (40, 40, 8)).astype(np.uint8)
    grey = np.array([20.0, 100.0, 200.0])[truth] + rng.normal(0, 8, truth.shape)
    labels, levels = segment(grey, phases=3)
    assert levels.size == 2 and np.mean(labels == truth) > 0.995
    given, used = segment(grey, [60.0, 150.0])
    assert np.array_equal(used, [60.0, 150.0]) and np.mean(given == truth) > 0.995


def test_downsampling_averages_blocks_and_keeps_the_fraction():
    truth, grey = _scan(noise=5.0)
    mean = downsample_mean(grey, 4)
    assert mean.shape == (16, 16)
    assert np.isclose(mean[3, 5], grey[12:16, 20:24].mean())
    # the mid-level between the pure grey levels (60, 180) after block averaging is the
    # majority rule: the fraction is kept (measured 0.352 against 0.345 at 16^2); Otsu on the
    # partial-volume histogram sits lower (110) and overestimates it (0.398), as documented
    labels, _ = segment(grey, 120.0, downsample=4)
    assert abs(labels.mean() - truth.mean()) < 0.02
    otsu, level = segment(grey, downsample=4)
    assert level[0] < 120.0 and otsu.mean() > labels.mean()
    odd = downsample_mean(grey[:63, :62], 4)  # trimmed to a multiple of the factor
    assert odd.shape == (15, 15)


def test_crop_then_segment():
    truth, grey = _scan()
    labels, _ = segment(grey, crop=((8, 40), (16, 64)))
    assert labels.shape == (32, 48)
    assert np.mean(labels == truth[8:40, 16:64]) > 0.999


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"image": np.full((8, 8), 3.0)}, "constant"),
    ({"image": np.where(np.eye(8) > 0, np.nan, 1.0)}, "NaN"),
    ({"crop": ((0, 80), (0, 8))}, "crop\\[0\\]"),
    ({"crop": ((0, 8),)}, "one \\(start, stop\\) pair per axis"),
    ({"threshold": [5.0, 2.0]}, "increasing"),
    ({"threshold": "mean"}, "otsu"),
    ({"downsample": 0}, "downsample"),
    ({"phases": 9}, "phases"),
    ({"image": np.zeros(5)}, "2D or 3D"),
])
def test_segment_refuses_bad_input(kwargs, match):
    image = kwargs.pop("image", np.arange(64.0).reshape(8, 8))
    with pytest.raises(InputError, match=match):
        segment(image, **kwargs)


def test_load_specimens_segments_grey_scans(tmp_path):
    _, grey = _scan()
    np.save(tmp_path / "scan.npy", grey.astype(np.float32))
    ds = load_specimens(tmp_path / "scan.npy", voxel_size=0.5, threshold="otsu", downsample=2)
    assert ds["phase"].shape == (1, 32, 32)
    assert ds.attrs["voxel_size"] == 1.0 and ds.attrs["periodic"] == 0
    seg = json.loads(ds.attrs["segmentation"])
    assert seg["downsample"] == 2 and 100 < seg["levels"][0][0] < 140
    with pytest.raises(InputError, match="threshold='otsu'"):
        load_specimens(tmp_path / "scan.npy")
    with pytest.raises(InputError, match="grey-level scans"):
        load_specimens(tmp_path / "scan.npy", crop=((0, 8), (0, 8)))
