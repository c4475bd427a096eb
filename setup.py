"""The one compiled piece: the exact minibatch-OT solver behind couplings.exact_ot.

Everything else is configured in pyproject.toml. The extension is optional: without a C compiler
the package still installs and exact_ot falls back to POT's network simplex (slower; the test
`test_compiled_solver_is_built` fails in that case, so CI always exercises the compiled one).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("straightline._assignment", ["src/straightline/_assignment.c"], optional=True)])
