"""The sandboxed worker: evaluates one learner submission on the grader's inputs, reports numbers.

This file runs *inside* the sandbox, as a script, next to `probes.py`; it imports only the
standard library, torch and `probes` (the rest of the package is not visible there). It is trusted
code until the moment it executes the learner's code, and untrusted afterwards: everything it
reports from then on is treated by the grader as data to check, never as a verdict.

    python -I -B worker.py RESULT_FD --tag TAG --memory BYTES --output-bytes BYTES
                                   [--open-files N] [--nice N] [--seccomp-fd FD]

(--tag is not used here: it marks the processes of one sandbox so they can be found from outside.)

Protocol (one JSON object per line on RESULT_FD; the job arrives as one JSON line on stdin):

    -> {"type": "ready"}                              torch imported, warmed up
    <- job {"nonce", "function", "code", "cpu_seconds", "cases": [...]}
    -> {"nonce", "type": "accepted"}                  job read; the learner's code is not loaded yet
    -> {"nonce", "type": "syntax_error", "line", "offset", "message", "text"}      (then done)
    -> {"nonce", "type": "load_error", "error": {...}}                             (then done)
    -> {"nonce", "type": "missing_function", "names": [...]}                       (then done)
    -> {"nonce", "type": "start", "case": ID}         before each test case
    -> {"nonce", "type": "case", "case": ID, "calls": [...]}
    -> {"nonce", "type": "run", "final", "visited", ["losses"], "calls"} or {"type": "run", "error"}
                                                      a simulation job (job["run"]; no cases)
    -> {"nonce", "type": "done"}

Each call record holds the output (shape, dtype, values, requires_grad) or the exception, what the
probe model received, and the shapes noise_fn was called with. Limits set here before any learner
code runs (soft = hard, and the sandbox has no capability to raise them): address space, file
size (which also caps the captured stdout/stderr file), no core dumps, a lower CPU priority
(nice, with RLIMIT_NICE = 0 so it stays), and at job time CPU seconds and open files. stdout and
stderr are a file the grader reads afterwards; RESULT_FD is a pipe.

The fork server (`zygote.py`) runs the same steps in each child it forks: `warm_up` once in the
zygote, then per child `set_limits`, `load_filter`, the `ready` record and `serve_job`.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import signal
import sys
import time
import traceback

SUBMISSION = "<submission>"
MAX_JOB_BYTES = 4 * 1024 * 1024
MAX_TEXT = 2000
MAX_OUTPUT_VALUES = 20_000

_write = os.write  # bound now: learner code that replaces os.write cannot redirect our records
_dumps = json.dumps


def parse_args(argv: list[str], first: str = "result_fd", extra: dict | None = None) -> dict:
    """FD --name VALUE ...: {first: FD, "name": VALUE, ...}; `extra` adds options (name -> type)."""
    opts: dict = {first: int(argv[0])}
    names = {
        "--tag": str,
        "--memory": int,
        "--output-bytes": int,
        "--open-files": int,
        "--nice": int,
        "--seccomp-fd": int,
        **(extra or {}),
    }
    i = 1
    while i < len(argv):
        name = argv[i]
        if name not in names or i + 1 >= len(argv):
            raise SystemExit(f"{os.path.basename(sys.argv[0])}: bad argument {name!r}")
        opts[name[2:].replace("-", "_")] = names[name](argv[i + 1])
        i += 2
    return opts


def _set_limit(which: int, value: int) -> None:
    resource.setrlimit(which, (value, value))


def _install_seccomp(fd: int) -> None:
    """Load a seccomp filter ourselves (unsafe local mode, where no bubblewrap loads it for us)."""
    with os.fdopen(fd, "rb") as f:
        load_filter(f.read())


def load_filter(program: bytes) -> None:
    """Set no_new_privs and load `program` (raw `struct sock_filter` instructions) on this process.

    Filters stack: one loaded here adds to any the process already has (the fork server's children
    load theirs on top of the zygote's).
    """
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    prog = SockFprog(len(program) // 8, program)
    if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


class _CappedStream:
    """sys.stdout / sys.stderr: past the output cap (RLIMIT_FSIZE on the capture file) writes are
    dropped instead of raising, so a correct solution that prints a lot still gets graded."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError:
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except OSError:
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


class Channel:
    """Writes records on the result pipe, one JSON line each.

    Nothing here is secret from the learner's code, which runs in this same process and could
    find the descriptor and the nonce. It does not need to be: the records carry only numbers and
    shapes, and the grader recomputes what they should be; a record the worker did not write in
    the expected order fails the submission.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.nonce = ""

    def send(self, record: dict) -> None:
        if self.nonce:
            record = {"nonce": self.nonce, **record}
        data = (_dumps(record, allow_nan=True) + "\n").encode()
        view = memoryview(data)
        while view:
            n = _write(self.fd, view)
            view = view[n:]


def _text(value: object) -> str:
    try:
        s = str(value)
    except BaseException:  # noqa: BLE001 - a lying __str__ must not crash the worker
        s = "<unprintable>"
    return s[:MAX_TEXT]


def _error_record(exc: BaseException) -> dict:
    """Type, message and the innermost line of the submission where the exception passed."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SUBMISSION:
            line = tb.tb_lineno
        tb = tb.tb_next
    try:
        name = type(exc).__name__
    except BaseException:  # noqa: BLE001
        name = "Exception"
    return {"type": _text(name), "message": _text(exc), "line": line}


def _describe_output(value: object, torch) -> dict:
    try:
        if not isinstance(value, torch.Tensor):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return {"kind": "number", "values": [float(value)]}
            return {"kind": "other", "type": _text(type(value).__name__)}
        out = {
            "kind": "tensor",
            "shape": [int(n) for n in value.shape],
            "dtype": _text(value.dtype),
            "requires_grad": bool(value.requires_grad),
        }
        if value.numel() <= MAX_OUTPUT_VALUES:
            flat = value.detach().to("cpu", torch.float64).reshape(-1)
            out["values"] = [float(v) for v in flat.tolist()]
        return out
    except BaseException as exc:  # noqa: BLE001 - whatever the object does, report it
        return {"kind": "unreadable", "error": _error_record(exc)}


def _build_tensor(spec: dict, torch):
    dtype = getattr(torch, spec.get("dtype", "float32"))
    return torch.tensor(spec["values"], dtype=dtype).reshape(spec["shape"])


class NoiseFn:
    """The grader's noise_fn: returns the prepared noise (a fresh copy) and records each call."""

    def __init__(self, noise, torch):
        self.noise, self.torch, self.calls = noise, torch, []

    def __call__(self, like):
        shape = list(like.shape) if isinstance(like, self.torch.Tensor) else None
        self.calls.append({"shape": shape})
        if shape != list(self.noise.shape):
            raise ValueError(
                f"noise_fn was called with a tensor of shape {shape}; call it with x_1 "
                f"(shape {list(self.noise.shape)}) to get noise shaped like the data"
            )
        return self.noise.clone()


def _run_call(fn, call: dict, torch, probes) -> dict:
    models, noise_fns = [], []

    def build(arg: dict):
        kind = arg["kind"]
        if kind == "model":
            model = probes.ProbeModel(arg["spec"])
            models.append(model)
            return model
        if kind == "flowmap":
            return probes.FlowMapProbe(arg["spec"])
        if kind == "tensor":
            return _build_tensor(arg["tensor"], torch)
        if kind == "noise_fn":
            noise = NoiseFn(_build_tensor(arg["tensor"], torch), torch)
            noise_fns.append(noise)
            return noise
        if kind in ("int", "float"):
            return arg["value"]
        raise ValueError(f"unknown argument kind {kind!r}")

    args = [build(a) for a in call["args"]]
    kwargs = {name: build(a) for name, a in call["kwargs"].items()}
    record: dict = {}
    start = time.perf_counter()
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included
        record["error"] = _error_record(exc)
    else:
        record["output"] = _describe_output(value, torch)
    record["seconds"] = time.perf_counter() - start
    try:
        record["model_calls"] = [c for m in models for c in list(m.calls)[:1000]]
        record["noise_calls"] = [c for n in noise_fns for c in list(n.calls)[:1000]]
    except BaseException as exc:  # noqa: BLE001
        record["model_calls"], record["noise_calls"] = [], []
        record["record_error"] = _text(exc)
    return record


def set_limits(memory: int, output_bytes: int) -> None:
    """The limits every worker gets before any learner code runs (soft = hard: no way back)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the output cap: writes fail (EFBIG), no kill
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_NICE, 0)  # no way back to a higher priority
    _set_limit(resource.RLIMIT_AS, memory)
    _set_limit(resource.RLIMIT_FSIZE, output_bytes)


def warm_up():
    """Import torch, `probes` and `simkit`, and run the kernels a submission will use (a loss and
    its gradient, a Jacobian-vector product); (torch, probes)."""
    import torch  # the expensive part: done before the job arrives (warm worker)

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import probes
    import simkit  # noqa: F401 - imported now, before the job: "run it in the simulation" jobs use it

    torch.manual_seed(0)  # warm up the kernels a submission will use
    model = probes.ProbeModel({"kind": "affine", "a": 1.0, "b": 1.0, "c": 0.0, "d": 0.5})
    x = torch.randn(4, 2)
    loss = torch.nn.functional.mse_loss(model(x, torch.rand(4)), x)
    loss.backward()
    # the first forward-mode transform through a module imports a large part of torch (seconds on
    # a loaded machine): done here, once, instead of inside the first meanflow_target submission
    from torch.func import jvp

    flow_map = probes.FlowMapProbe({"kind": "smooth", "a": 1.0, "b": 0.5, "c": 0.2, "d": 0.3, "e": 0.1})
    s = torch.rand(4)
    jvp(flow_map, (x, s, s), (x, torch.ones_like(s), torch.zeros_like(s)))
    del model, x, loss, flow_map
    return torch, probes


def serve_job(channel: "Channel", torch, probes, open_files: int) -> None:
    """Read the job from stdin, set the job-time limits, run it, exit (never returns).

    stdout/stderr (descriptors 1 and 2) are the capture file; it is emptied here, so that it keeps
    only what the learner's code prints.
    """
    raw = sys.stdin.buffer.readline(MAX_JOB_BYTES)
    job = json.loads(raw)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    channel.nonce = str(job["nonce"])

    usage = resource.getrusage(resource.RUSAGE_SELF)
    _set_limit(resource.RLIMIT_CPU, int(usage.ru_utime + usage.ru_stime) + 1 + int(job["cpu_seconds"]))
    _set_limit(resource.RLIMIT_NOFILE, open_files)
    sys.stdout.flush()
    sys.stderr.flush()
    os.ftruncate(1, 0)  # the capture file: keep only what the learner's code prints
    os.lseek(1, 0, os.SEEK_SET)
    sys.stdout, sys.stderr = _CappedStream(sys.stdout), _CappedStream(sys.stderr)
    channel.send({"type": "accepted"})

    process_job(job, channel, torch, probes)
    _flush_and_exit()


def main(argv: list[str]) -> None:
    opts = parse_args(argv)
    os.nice(int(opts.get("nice", 0)))  # lower priority: raising it again needs a capability
    channel = Channel(int(opts["result_fd"]))
    set_limits(int(opts["memory"]), int(opts["output_bytes"]))
    if "seccomp_fd" in opts:
        _install_seccomp(int(opts["seccomp_fd"]))
    torch, probes = warm_up()
    channel.send({"type": "ready"})
    serve_job(channel, torch, probes, int(opts.get("open_files", 64)))


def process_job(job: dict, channel: "Channel", torch, probes, simkit=None) -> None:
    """Compile and load the learner's code, run every test case, send the records, then `done`.

    A job with a `run` spec runs the learner's function in a simulation instead (see simkit.py)
    and sends one `run` record. Returns normally (the caller exits the process). Also used
    in-process by the grader's tests to check the exercise logic on known code, without a sandbox.
    """
    try:
        code = compile(job["code"], SUBMISSION, "exec", dont_inherit=True)
    except SyntaxError as exc:
        channel.send(
            {
                "type": "syntax_error",
                "line": exc.lineno,
                "offset": exc.offset,
                "message": _text(exc.msg),
                "text": _text((exc.text or "").rstrip("\n")),
            }
        )
        _finish(channel)
        return
    except BaseException as exc:  # noqa: BLE001 - e.g. ValueError for null bytes, RecursionError
        channel.send({"type": "syntax_error", "line": None, "offset": None, "message": _text(exc), "text": ""})
        _finish(channel)
        return

    namespace = {"__name__": "submission", "__builtins__": builtins}
    try:
        exec(code, namespace)
    except BaseException as exc:  # noqa: BLE001
        channel.send({"type": "load_error", "error": _error_record(exc)})
        _finish(channel)
        return
    fn = namespace.get(job["function"])
    if not callable(fn):
        names = sorted(k for k, v in namespace.items() if callable(v) and not k.startswith("__"))[:20]
        channel.send({"type": "missing_function", "names": names, "found": fn is not None})
        _finish(channel)
        return

    if job.get("run") is not None:
        _run_simulation(fn, job["run"], channel, simkit)
        _finish(channel)
        return

    for case in job["cases"]:
        channel.send({"type": "start", "case": case["id"]})
        calls = []
        torch.manual_seed(int(case["seed"]))  # reproducible runs; the calls of a case draw in sequence
        for call in case["calls"]:
            calls.append(_run_call(fn, call, torch, probes))
        channel.send({"type": "case", "case": case["id"], "calls": calls})
    _finish(channel)


def _run_simulation(fn, spec: dict, channel: "Channel", simkit=None) -> None:
    """The learner's function driving a simulation; its numbers, or the exception it raised."""
    if simkit is None:
        import simkit  # next to this file in the sandbox

    runner = simkit.train_run if spec.get("mode") == "train" else simkit.euler_run
    try:
        result = runner(fn, spec)
        record = {
            "type": "run",
            "final": result["final"],
            "visited": result["visited"],
            "calls": int(result.get("calls", 0)),
        }
        if "losses" in result:
            record["losses"] = result["losses"]
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included
        record = {"type": "run", "error": _error_record(exc)}
    channel.send(record)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the learner may have replaced or closed them
            pass


def _finish(channel: "Channel") -> None:
    """Flush what the learner printed, then say `done` (the grader reads the output right after)."""
    _flush()
    channel.send({"type": "done"})


def _flush_and_exit() -> None:
    _flush()
    os._exit(0)  # no interpreter shutdown: no atexit handlers or __del__ of the learner's run


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BaseException:  # noqa: BLE001 - before the learner's code: a grader fault; report on stderr
        traceback.print_exc()
        _flush_and_exit()
