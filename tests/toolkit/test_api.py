"""The public API is a contract: pin it."""

import straightline

DOCUMENTED = [
    "CosinePath", "DistillResult", "GaussianPath", "LinearPath", "PathSample", "ReflowRound", "TrainConfig", "TrainResult", "TrainState",
    "Trajectory", "VPPath", "cfm_loss", "convert", "couplings", "data", "diffusion", "distill", "guidance",
    "integrate", "likelihood", "load", "log_prob", "metrics", "models", "oracles", "reflow", "reflow_rounds",
    "sample", "save", "so3", "timesteps", "train",
    "BrownianBridgePath", "sde", "conditions", "flowmaps",
]


def test_all_is_the_documented_list():
    assert sorted(straightline.__all__) == sorted(DOCUMENTED)
    for name in DOCUMENTED:
        assert hasattr(straightline, name), name


def test_submodule_contracts():
    from straightline import convert, couplings, data, flowmaps, likelihood, metrics, models, oracles, so3, timesteps

    for module, names in [
        (data, ["toy", "toy_names", "digits"]),
        (couplings, ["independent", "exact_ot", "sinkhorn"]),
        (timesteps, ["uniform", "logit_normal", "shift", "inverse_one_minus_t"]),
        (metrics, ["w2", "w2_floor", "w2_floor_band", "W2Floor", "off_data_fraction", "mmd", "path_energy", "npe", "straightness", "digit_fd", "digit_fd_floor",
                   "digit_accuracy", "digit_features"]),
        (models, ["MLP", "ConvNet", "MMDiT", "SO3VelocityMLP", "FlowMapMLP", "FlowMapMMDiT"]),
        (oracles, ["GaussianMixture"]),
        (convert, ["velocity_to_x1", "x1_to_velocity", "velocity_to_noise", "noise_to_velocity",
                   "velocity_to_score", "score_to_velocity", "as_velocity"]),
        (likelihood, ["log_prob"]),
        (flowmaps, ["average_velocity", "meanflow_target", "meanflow_loss", "shortcut_loss", "lsd_loss", "sample",
                    "train"]),
        (so3, ["exp", "log", "geodesic", "distance", "random_rotations", "isotropic_noise", "rotation_dataset",
               "so3_cfm_loss", "so3_sample"]),
    ]:
        for name in names:
            assert name in module.__all__ and callable(getattr(module, name)), (module.__name__, name)


def test_toolkit_never_imports_the_app():
    import subprocess
    import sys

    code = (
        "import sys, straightline, straightline.training, straightline.metrics;"
        "bad = [m for m in sys.modules if m.startswith(('fastapi', 'jinja2', 'straightline.web', "
        "'straightline.course', 'straightline.grader'))]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_train_stays_the_function_whatever_is_imported_first():
    # the lazy package must never hand out a submodule where the API promises a function
    import importlib
    import subprocess
    import sys

    code = (
        "import straightline.training, straightline.solvers, straightline.checkpoints, straightline.losses;"
        "import straightline.reflowing, straightline.distilling, straightline.likelihood;"
        "import straightline as sl; import sys;"
        "bad = [n for n in ('train', 'sample', 'integrate', 'save', 'load', 'cfm_loss', 'reflow', 'distill',"
        " 'log_prob', 'reflow_rounds') if not callable(getattr(sl, n))"
        " or type(getattr(sl, n)).__name__ == 'module'];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert importlib.import_module("straightline").train.__module__ == "straightline.training"
