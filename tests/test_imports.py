"""``import stochhom`` and ``stochhom --help``/``--version`` stay light: the heavy dependencies
load only when used. Module presence is checked in fresh processes, not timings (flaky on CI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import stochhom
from stochhom import choices

HEAVY = ("torch", "gpytorch", "chaospy", "matplotlib", "dask", "porespy", "sklearn", "xarray", "scipy.stats")


def loaded_after(code: str, modules: tuple[str, ...] = HEAVY) -> list[str]:
    """The ``modules`` loaded in a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli_code(*argv: str) -> str:
    """Run the ``stochhom`` command's ``main`` (the entry point) with ``argv``, output swallowed."""
    return ("import contextlib, io\nimport stochhom.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            f"    stochhom.cli.main({list(argv)!r})")


def test_import_stochhom_loads_no_heavy_dependency() -> None:
    assert loaded_after("import stochhom") == []


def test_import_stochhom_loads_neither_numpy_nor_the_subpackages() -> None:
    assert loaded_after("import stochhom", ("numpy", "stochhom.surrogates", "stochhom.spectral",
                                            "stochhom.microstructure", "stochhom.statistics")) == []


@pytest.mark.parametrize("argv", [("--version",), ("--help",), ("generate", "--help"), ("run", "--help"),
                                  ("warmup", "--help")])
def test_help_and_version_load_no_heavy_dependency(argv: tuple[str, ...]) -> None:
    assert loaded_after(cli_code(*argv), (*HEAVY, "numpy", "numba")) == []


def test_the_entry_point_prints_the_version() -> None:
    out = subprocess.run([sys.executable, "-m", "stochhom.cli", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == f"stochhom {stochhom.__version__}"


def test_every_public_name_resolves_as_attribute_and_by_from_import() -> None:
    names = [n for n in stochhom.__all__ if n != "__version__"]
    assert set(names) <= set(dir(stochhom))
    for name in names:
        assert getattr(stochhom, name) is not None
    namespace: dict = {}
    exec(f"from stochhom import {', '.join(names)}", namespace)
    assert namespace["homogenize"] is stochhom.spectral.homogenize
    assert namespace["generate"] is stochhom.microstructure.generate
    assert stochhom.io.save_dataset is not None  # every subpackage, not only those of __all__
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        stochhom.nonexistent  # noqa: B018


def test_a_lazily_imported_registry_holds_every_generator_and_porespy_stays_unloaded() -> None:
    code = ("import json, stochhom\nstochhom.generate\n"
            "from stochhom.microstructure.ensemble import GENERATORS\nprint(json.dumps(sorted(GENERATORS)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == sorted(choices.GENERATOR_NAMES)
    assert "porespy" not in loaded_after("import stochhom; stochhom.generate; stochhom.microstructure.available()")


def test_the_light_tables_are_the_solvers() -> None:
    from stochhom.fem.boundary import BOUNDARY_CONDITIONS
    from stochhom.microstructure.ensemble import GENERATORS
    from stochhom.spectral import DISCRETIZATIONS, SCHEMES
    from stochhom.spectral.problem import BACKENDS

    assert SCHEMES is choices.SCHEMES and DISCRETIZATIONS is choices.DISCRETIZATIONS
    assert BOUNDARY_CONDITIONS is choices.BOUNDARY_CONDITIONS and BACKENDS is choices.BACKENDS
    assert set(choices.GENERATOR_NAMES) <= set(GENERATORS)
