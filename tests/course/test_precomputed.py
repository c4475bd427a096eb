"""The shipped precomputed simulation results are what the simulations compute from the shipped models."""

import base64

import numpy as np
import pytest

from straightline.course import precomputed, shipped
from straightline.course.sims import Simulations


@pytest.fixture(scope="module")
def models():
    return shipped.load_shipped()


@pytest.fixture()
def sims(models):
    return Simulations(models)


def _decode(arr):
    return np.frombuffer(base64.b64decode(arr["data"]), dtype="<i2").astype(np.float64) / arr["scale"]


def test_every_setting_is_shipped(sims):
    for name, params in precomputed.SETTINGS:
        assert precomputed.lookup(sims.cache_key(name, sims.params_model(name, params))) is not None, (name, params)


@pytest.mark.parametrize("name, params", [
    ("log-density", {"dataset": "moons", "coupling": "exact_ot", "grid": 24}),
    ("solver-orders", {"dataset": "two_clusters"}),
])
def test_a_shipped_result_is_recomputed_alike(sims, name, params):
    model = sims.params_model(name, params)
    with precomputed.bypassed():
        fresh = sims.compute(name, model)
    stored = precomputed.lookup(sims.cache_key(name, model))
    if name == "log-density":
        for key in ("model", "true"):
            assert np.allclose(_decode(fresh[key]), _decode(stored[key]), atol=0.01)
        assert fresh["on_data"] == pytest.approx(stored["on_data"], rel=1e-3)
    else:
        for method, series in fresh["series"].items():
            assert series["nfe"] == stored["series"][method]["nfe"]
            assert series["error"] == pytest.approx(stored["series"][method]["error"], rel=1e-2, abs=1e-12)
    # and the app serves the stored one
    assert sims.run(name, params) == stored


def test_new_data_points_reuse_the_shipped_heat_maps(sims):
    """A new seed changes only the data points: the heat maps are the shipped seed-0 ones, and the
    on-data comparison is computed afresh for the new points."""
    first = sims.run("log-density", {"dataset": "two_clusters", "grid": 24})
    other = sims.run("log-density", {"dataset": "two_clusters", "grid": 24, "seed": 3})
    assert other["model"] == first["model"] and other["true"] == first["true"]
    assert other["data"] != first["data"] and other["on_data"] != first["on_data"]
    assert other["on_data"]["mean_abs_gap"] < 0.5


def test_the_log_density_page_offers_only_shipped_settings():
    """Its controls reach the precomputed settings (data, coupling, grid) and the seed; the RK4-steps
    control, which changed no quoted number, is gone."""
    from pathlib import Path

    js = (Path(precomputed.__file__).parent.parent / "web" / "static" / "sims" / "log-density.js").read_text()
    assert 'name: "steps"' not in js and "RK4 steps\", parse" not in js
    grids = {params["grid"] for name, params in precomputed.SETTINGS if name == "log-density"}
    for grid in grids:
        assert f"[{grid}, " in js
