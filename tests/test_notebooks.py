"""The notebook studies in ``notebooks/`` run end to end, at small sizes, and are stored without outputs.

Each notebook reads ``STOCHHOM_NB_SMALL`` in its first code cell and then picks tiny sizes, so that
this file only checks that the notebooks run (about 10 s each on 2 cores, kernel start included).
The kernel runs in a temporary directory: nothing is written into the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ["01_quickstart", "02_rve_size", "03_surrogates_uq", "04_validation_ood", "05_multiscale",
            "06_specimens_boundary_conditions"]
NOTEBOOKS = [NOTEBOOK_DIR / f"{name}.ipynb" for name in EXPECTED]


def _code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_the_notebooks_are_stored_without_outputs() -> None:
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == EXPECTED
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        cells = _code_cells(nb)
        dirty = [i for i, cell in enumerate(cells) if cell.outputs or cell.execution_count is not None]
        assert not dirty, f"{path.name}: code cells {dirty} have outputs; clear them before committing"
        # the sizes are set in the first code cell, which the test shrinks through the environment
        assert "STOCHHOM_NB_SMALL" in cells[0].source, path.name
        assert any(cell.cell_type == "markdown" for cell in nb.cells[:2]), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_at_small_sizes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCHHOM_NB_SMALL", "1")
    monkeypatch.setenv("STOCHHOM_FFT_WORKERS", "1")  # the tests run in parallel processes
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend renders the figures
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the traceback, when a cell fails
    outputs = [out for cell in _code_cells(nb) for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert images, f"{path.name} displayed no figure"
    assert all(cell.execution_count is not None for cell in _code_cells(nb)), "a code cell did not run"
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before  # nothing written next to the notebooks
