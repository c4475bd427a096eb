"""The code that runs INSIDE the grader's sandbox (untrusted room): standard library and torch only.

The sandbox sees these files, and nothing else of the package, at /opt/straightline-grader/
(`..sandbox.INSIDE_FILES`), and runs them as scripts that import one another by their bare
names (`import probes`):

    worker.py   the worker's entry point: limits, the learner's code, the records it writes
    zygote.py   the fork server's loop: imports torch once, forks one child per submission
    probes.py   the probe model and noise a learner's function is called with
    simkit.py   the "run it in the simulation" kit (also imported by the trusted side)
    control.py  the fixed-size records between the fork server and its zygote
    seccomp.py  the assembler of the process filters (also used by the trusted side to build them)

Nothing here imports the rest of `straightline`; the trusted side imports these modules as
`straightline.grader.inside.X` where it needs the same definitions (the filter, the records,
the simulation kit).
"""
