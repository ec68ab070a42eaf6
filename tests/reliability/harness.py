"""Shared machinery of the reliability suite and of ``benchmarks/soak_kill.py``.

* ``KINDS``: the tiny runs the kill tests use (on-policy, off-policy, curriculum, offline-to-online), as
  CLI overrides; the offline-to-online kind trains on a dataset it collects itself (`prepare`).
* `Zygote`: a process that imports the whole suite once and then *forks* one child per ``rl``
  command. A child is an ordinary process running ``experiments.cli.main``: it can be SIGKILLed at
  any instant, has its own pid, files and exit status, and starts in the state of a fresh
  interpreter that has only imported modules (the zygote never trains, never touches JAX's
  backend or torch's thread pool). It saves ~3 s of imports per command, which is what makes
  dozens of kill trials fit into a CI budget on 2 cores. References are still trained by real
  ``python -m experiments.cli`` processes, so every comparison also checks fork == fresh process.
* `kill_trial`: start a run, SIGKILL it when ``metrics.csv`` reaches a random row count (never a
  wall-clock sleep), ``rl train --resume`` with more random kills until it finishes, then compare
  with the uninterrupted reference.
* `compare_runs`: final weights, the final checkpoint (weights, optimizer and generator state,
  ``state.json`` with counters, loop and teacher state, replay buffer) and ``metrics.csv`` minus the
  wall-clock columns.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "experiments" / "manifests"
HOOKS = ("between_components", "after_tmp_write", "before_fsync", "before_replace",
         "after_replace_before_dir_fsync", "before_prune")
"""Every ``_fault`` hook of a checkpoint save in ``rl/core/checkpoint.py``, in the order a save passes them."""
HOOKS_BEFORE_PUBLISH = HOOKS[:4]
FINAL_POLICY_HOOKS = ("final_between_components", "final_after_tmp_write", "final_before_fsync",
                      "final_before_replace", "final_after_replace")
"""The hooks of ``save_final_policy`` (``final/``), fired at the run's last step after its final checkpoint."""


@dataclass(frozen=True)
class Kind:
    """A tiny run of one kind: manifest, overrides, its checkpoint steps."""

    name: str
    manifest: Path
    group: str  # the manifest's ``name``: runs go to <runs>/<group>/<run id>
    overrides: tuple[str, ...]
    checkpoints: tuple[int, ...]  # env steps at which checkpoints are written (the last is the final one)
    fault_step: int  # a mid-run checkpoint whose save also prunes (keep_last=2, third checkpoint)
    generated: bool = False  # the manifest (and its dataset) is made by `prepare` in the workspace

    def args(self) -> list[str]:
        return [x for o in self.overrides for x in ("--set", o)]

    def manifest_path(self) -> Path:
        return prepare(self) if self.generated else self.manifest


def _sets(**kv) -> tuple[str, ...]:
    return tuple(f"{k.replace('__', '.')}={v}" for k, v in kv.items())


KINDS = {
    "ppo": Kind("ppo", MANIFESTS / "cartpole_ppo.yaml", "cartpole-ppo",
                _sets(train__total_steps=2048, checkpoint__every_steps=512, checkpoint__keep_last=2,
                      evaluation__every_steps=1024, evaluation__episodes=2, agent__n_epochs=5,
                      agent__batch_size=64),
                (512, 1024, 1536, 2048), 1536),
    "dqn": Kind("dqn", MANIFESTS / "cartpole_dqn.yaml", "cartpole-dqn",
                _sets(train__total_steps=2000, agent__learning_starts=200, checkpoint__every_steps=500,
                      checkpoint__keep_last=2, agent__buffer_size=2000, agent__train_freq=16,
                      agent__gradient_steps=8, agent__net_arch="[32,32]", train__log_every_steps=100,
                      evaluation__every_steps=1000, evaluation__episodes=2),
                (500, 1000, 1500, 2000), 1500),
    "sac": Kind("sac", MANIFESTS / "pendulum_sac.yaml", "pendulum-sac",
                _sets(train__total_steps=1500, agent__learning_starts=200, checkpoint__every_steps=400,
                      checkpoint__keep_last=2, agent__buffer_size=2000, agent__batch_size=64,
                      agent__net_arch="[32,32]", train__log_every_steps=100, evaluation__every_steps=500,
                      evaluation__episodes=2),
                (400, 800, 1200, 1500), 1200),
    "curriculum": Kind("curriculum", MANIFESTS / "cartpole_curriculum_ppo.yaml", "cartpole-curriculum-ppo",
                       _sets(train__total_steps=2048, checkpoint__every_steps=512, checkpoint__keep_last=2,
                             evaluation__every_steps=1024, evaluation__episodes=2, agent__n_epochs=5,
                             agent__batch_size=64, curriculum__teacher__threshold=20.0,
                             curriculum__teacher__window=8),
                       (512, 1024, 1536, 2048), 1536),
    "offline": Kind("offline", MANIFESTS / "pendulum_iql_to_online.yaml", "pendulum-iql-to-online", (),
                    (200, 400, 600, 800, 1000), 600, generated=True),
}
"""The runs the kill tests use. PPO minibatches are a quarter of a rollout, so a sampler generator
that is not restored changes the weights (with one full-batch minibatch the order would not matter).
``curriculum``: a staged-schedule teacher whose threshold is low enough that it moves through its
stages inside the run, so its state changes across checkpoints. ``offline``: IQL offline-to-online on
Pendulum (`OFFLINE_PHASES`): 500 offline updates on a 5-episode random dataset collected by ``rl
collect``, then 500 online env steps with a decaying offline fraction; the step axis counts updates
plus env steps, so checkpoints 200 and 400 are in the offline phase, the phase switch is at 500 and
600 (the save that prunes), 800, 1000 are online with the online replay buffer."""

OFFLINE_PHASE_SWITCH = 500
OFFLINE_PHASES = [{"offline": {"updates": 500}},
                  {"online": {"steps": 500, "offline_fraction": {"kind": "linear", "start": 0.5, "end": 0.0}}}]

_workspace: Path | None = None


def set_workspace(path: Path) -> None:
    """Where generated manifests and datasets go (the test session's or the soak's directory)."""
    global _workspace
    _workspace = Path(path)


def prepare(kind: Kind) -> Path:
    """The manifest of a generated kind, made once per workspace: the offline-to-online kind collects its
    dataset with ``rl collect`` (random Pendulum policy, 5 episodes; never committed) and points a copy
    of ``pendulum_iql_to_online.yaml`` at it with its sha256."""
    global _workspace
    if _workspace is None:  # used outside pytest and the soak: a temporary directory, removed at exit
        _workspace = Path(tempfile.mkdtemp(prefix="rlsuite-reliability-"))
        atexit.register(shutil.rmtree, _workspace, ignore_errors=True)
    path = _workspace / f"{kind.name}.yaml"
    if path.exists():
        return path
    import yaml

    root = _workspace / "datasets"
    res = rl("collect", "--env", "Pendulum-v1", "--policy", "random", "--episodes", "5", "--seed", "0",
             "--out", "reliability/pendulum-random-v0", "--root", str(root), "--force")
    if res.returncode != 0:
        raise RuntimeError(f"rl collect failed: {res.stderr}")
    sha = next(line.split()[1] for line in res.stdout.splitlines() if line.startswith("sha256: "))
    data = yaml.safe_load(kind.manifest.read_text())
    data["dataset"] = {"path": str(root / "reliability" / "pendulum-random-v0"), "sha256": sha}
    data["phases"] = OFFLINE_PHASES
    data["agent"].update(net_arch=[32, 32], batch_size=32, buffer_size=1000)
    data["train"] = {"total_steps": 1000, "log_every_steps": 50}
    data["evaluation"] = {"every_steps": 500, "episodes": 2}
    data["checkpoint"] = {"every_steps": 200, "keep_last": 2}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))  # JSON is YAML
    tmp.replace(path)
    return path


def train_args(kind: Kind, runs: Path, run_id: str, *extra: str) -> list[str]:
    return ["train", str(kind.manifest_path()), "--runs-dir", str(runs), "--run-id", run_id, "--quiet",
            *kind.args(), *extra]


def rl(*args: str, env: dict | None = None, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    """``python -m experiments.cli ARGS`` in a fresh interpreter (as tests/integration does)."""
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=REPO, **popen)


# -- the zygote ---------------------------------------------------------------------------------------

_ZYGOTE = r"""
import json, os, resource, signal, sys, traceback
import torch, jax, gymnasium, safetensors.numpy, tensorboard.summary.writer.event_file_writer
import envs, experiments.cli, experiments.train, experiments.session, experiments.evaluate_run
import experiments.loops.onpolicy, experiments.loops.offpolicy, experiments.curriculum, experiments.progress
import experiments.loops.offline, experiments.datasets, rl.core.datasets, h5py
import agents.registry, rl.core.advantages

reply = os.fdopen(os.dup(1), "w", buffering=1)
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 1)


def child(req):
    os.dup2(null, 0)
    reply.close()
    for fd, name in ((1, "stdout"), (2, "stderr")):
        out = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if req.get("fsize") is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (req["fsize"], req["fsize"]))
    sys.argv = ["rl", *req["argv"]]
    try:
        rc = experiments.cli.main(req["argv"])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException:
        rc = 1  # what the interpreter exits with on an uncaught exception
        try:
            traceback.print_exc()
        except OSError:  # stderr is a file under RLIMIT_FSIZE too
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    os._exit(rc)


for line in sys.stdin:
    req = json.loads(line)
    if req["cmd"] == "spawn":
        pid = os.fork()
        if pid == 0:
            try:
                child(req)
            finally:
                os._exit(70)
        reply.write(json.dumps({"pid": pid}) + "\n")
    elif req["cmd"] == "wait":
        _, status = os.waitpid(req["pid"], 0)
        reply.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
"""


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Child:
    pid: int
    stdout: Path
    stderr: Path
    zygote: Zygote
    rc: int | None = None

    def poll_alive(self) -> bool:
        """True while the child has not exited (a zombie counts as exited)."""
        if self.rc is not None:
            return False
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    def kill(self) -> bool:
        """SIGKILL the child; True if it was still running."""
        alive = self.poll_alive()
        if alive:
            os.kill(self.pid, signal.SIGKILL)
        return alive

    def wait(self) -> Result:
        if self.rc is None:
            self.rc = self.zygote._ask({"cmd": "wait", "pid": self.pid})["rc"]
            self.zygote.children.discard(self.pid)
        return Result(self.rc, self.stdout.read_text(), self.stderr.read_text())


@dataclass
class Zygote:
    """Forks ``rl`` commands from a pre-imported interpreter (see the module docstring)."""

    workdir: Path
    proc: subprocess.Popen | None = None
    children: set[int] = field(default_factory=set)
    _n: int = 0

    def start(self) -> Zygote:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     cwd=REPO, text=True, bufsize=1)
        return self

    def _ask(self, req: dict) -> dict:
        assert self.proc is not None and self.proc.poll() is None, "the zygote died"
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote exited with {self.proc.wait()}")
        return json.loads(line)

    def spawn(self, *argv: str, env: dict | None = None, fsize: int | None = None) -> Child:
        self._n += 1
        out, err = self.workdir / f"{self._n}.out", self.workdir / f"{self._n}.err"
        pid = self._ask({"cmd": "spawn", "argv": list(argv), "env": {**os.environ, **(env or {})},
                         "cwd": str(REPO), "stdout": str(out), "stderr": str(err), "fsize": fsize})["pid"]
        self.children.add(pid)
        return Child(pid, out, err, self)

    def run(self, *argv: str, env: dict | None = None, fsize: int | None = None, timeout: float = 300) -> Result:
        child = self.spawn(*argv, env=env, fsize=fsize)
        deadline = time.monotonic() + timeout
        while child.poll_alive():
            if time.monotonic() > deadline:
                child.kill()
                raise TimeoutError(f"rl {' '.join(argv)} ran over {timeout} s")
            time.sleep(0.01)
        return child.wait()

    def close(self) -> None:
        for pid in list(self.children):  # only our own children, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._ask({"cmd": "wait", "pid": pid})
        self.children.clear()
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
            self.proc = None


# -- comparing runs ------------------------------------------------------------------------------------

def metrics(run: Path) -> list[dict]:
    from rl.core.metrics import WALL_CLOCK_KEYS, read_csv_rows

    return [{k: v for k, v in r.items() if k not in WALL_CLOCK_KEYS} for r in read_csv_rows(run / "metrics.csv")]


def _arrays_equal(a: dict | None, b: dict | None) -> str | None:
    if a is None or b is None:
        return None if a is b else "one side has no arrays"
    if a.keys() != b.keys():
        return f"different tensors: {sorted(a.keys() ^ b.keys())[:4]}"
    for k in a:
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes():
            return f"tensor {k!r} differs"  # bit for bit: -0.0 vs 0.0 or another NaN payload counts
    return None


def compare_runs(run: Path, ref: Path) -> str | None:
    """None when ``run`` ends exactly as ``ref``; else the first difference, in words."""
    from safetensors.numpy import load_file

    from rl.core.checkpoint import list_checkpoints, load_checkpoint

    if not (run / "final" / "policy.safetensors").is_file():
        return "no final/policy.safetensors"
    if (d := _arrays_equal(load_file(str(run / "final" / "policy.safetensors")),
                           load_file(str(ref / "final" / "policy.safetensors")))):
        return f"final policy: {d}"
    if (run / "final" / "policy.json").read_bytes() != (ref / "final" / "policy.json").read_bytes():
        return "final/policy.json differs"
    a, b = metrics(run), metrics(ref)
    if a != b:
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        return f"metrics.csv differs from row {first + 1} ({len(a)} rows vs {len(b)})"
    ca, cb = load_checkpoint(list_checkpoints(run / "checkpoints")[-1]), load_checkpoint(
        list_checkpoints(ref / "checkpoints")[-1])
    if ca.step != cb.step:
        return f"newest checkpoint is step {ca.step}, reference {cb.step}"
    if (d := _arrays_equal(ca.weights, cb.weights)):
        return f"final checkpoint weights/optimizer/generators: {d}"
    if (d := _arrays_equal(ca.buffers, cb.buffers)):
        return f"final checkpoint buffers: {d}"
    if ca.state != cb.state:
        keys = [k for k in ca.state if ca.state.get(k) != cb.state.get(k)]
        return f"final checkpoint state.json differs in {keys}"
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    leftovers += [p.name for p in run.iterdir() if p.name.startswith((".tmp-", ".old-"))]  # of save_final
    if leftovers:
        return f"leftover temporary entries {leftovers}"
    return None


# -- kill trials ----------------------------------------------------------------------------------------

def _rows(csv: Path) -> tuple[int, int]:
    """(inode, complete data rows) of metrics.csv; (0, 0) when it does not exist yet."""
    try:
        st = os.stat(csv)
        return st.st_ino, max(csv.read_bytes().count(b"\n") - 1, 0)
    except FileNotFoundError:
        return 0, 0


def _run_until_rows(child: Child, csv: Path, rows: int | None, old_inode: int, timeout: float) -> bool:
    """Wait until ``csv`` (a new file, not ``old_inode``) holds ``rows`` complete rows, then SIGKILL.

    Returns True when the kill hit a running process. ``rows=None``: let it finish.
    """
    deadline = time.monotonic() + timeout
    while child.poll_alive():
        if time.monotonic() > deadline:
            child.kill()
            raise TimeoutError(f"run did not finish in {timeout} s")
        if rows is not None:
            inode, n = _rows(csv)
            if inode != old_inode and n >= rows:
                return child.kill()
        time.sleep(0.003)
    return False


@dataclass
class Trial:
    kind: str
    kills: int = 0  # SIGKILLs that hit a running process
    resumes: int = 0
    restarts: int = 0  # killed before the first checkpoint: resume refused, restarted with --force
    skipped_reports: int = 0  # resumes that reported skipping a broken newer checkpoint
    difference: str | None = None
    error: str | None = None  # a resume that failed: the run was lost

    @property
    def lost(self) -> bool:
        return self.error is not None

    @property
    def identical(self) -> bool:
        return self.error is None and self.difference is None


TRIALS: list[Trial] = []
"""Every trial of this process, for the summary line (conftest prints it after the session)."""


def summary(trials: list[Trial]) -> str:
    kinds = sorted({t.kind for t in trials})
    return (f"{len(trials)} kill trials ({', '.join(kinds)}): {sum(t.kills for t in trials)} SIGKILLs, "
            f"{sum(t.resumes for t in trials)} resumes, {sum(t.restarts for t in trials)} restarts before a first "
            f"checkpoint, {sum(t.lost for t in trials)} lost, {sum(t.identical for t in trials)} bit-identical")


def kill_trial(zyg: Zygote, kind: Kind, runs: Path, run_id: str, ref: Path, rng: np.random.Generator,
               total_rows: int, max_kills: int = 1, timeout: float = 240,
               hook: tuple[str, int] | None = None, on_kill=None, rows: list[int] | None = None) -> Trial:
    """Run ``kind`` to the end through SIGKILLs, then compare with ``ref``.

    Random mode (``hook=None``): each attempt is killed once ``metrics.csv`` holds a row count drawn
    uniformly from the rows still to come, until ``max_kills`` kills hit. Hook mode: the first attempt
    runs with ``RLSUITE_FAULT=hook`` and ``RLSUITE_FAULT_AT=step`` (the process SIGKILLs itself inside
    the checkpoint save); resumes run clean. After a kill the next attempt is ``rl train --resume``,
    or, when no checkpoint was published yet, a check that ``--resume`` refuses (exit 2, "no verified
    checkpoint") followed by a restart with ``--force``. ``on_kill(run, kill_number)`` is called
    after each kill, before anything else touches the run (for assertions on the state on disk).
    ``rows``: fixed row counts for the successive kills instead of random draws (each must lie beyond
    the rows the previous resume kept).
    """
    from rl.core.checkpoint import latest_verified
    from rl.core.metrics import read_csv_rows

    trial = Trial(kind.name)
    run = runs / kind.group / run_id
    csv = run / "metrics.csv"
    argv = train_args(kind, runs, run_id)
    kept_rows, inode = 0, 0
    for attempt in range((max_kills if rows is None else len(rows)) + 2):
        target = None
        if rows is not None:
            target = rows[trial.kills] if trial.kills < len(rows) else None
            assert target is None or kept_rows < target < total_rows, (target, kept_rows, total_rows)
        elif hook is None and trial.kills < max_kills and kept_rows < total_rows - 1:
            target = int(rng.integers(kept_rows + 1, total_rows))
        env = {"RLSUITE_FAULT": hook[0], "RLSUITE_FAULT_AT": str(hook[1])} if hook and attempt == 0 else None
        child = zyg.spawn(*argv, env=env)
        _run_until_rows(child, csv, target, inode, timeout)
        res = child.wait()
        if res.returncode == 0 and not (hook and attempt == 0):
            if attempt > 0 and argv[1] == "--resume" and "resuming from step-" not in res.stderr:
                trial.error = f"the resume did not say where it resumed from: {res.stderr[-300:]}"
                return trial
            trial.skipped_reports += res.stderr.count("skipping checkpoint")
            trial.difference = compare_runs(run, ref)
            return trial
        if res.returncode != -signal.SIGKILL:
            what = "the fault hook did not fire" if hook and attempt == 0 else "the run failed"
            trial.error = f"{what}: exit {res.returncode}: {res.stderr.strip()[-500:]}"
            return trial
        trial.kills += 1
        if on_kill is not None:
            on_kill(run, trial.kills)
        found, _ = latest_verified(run / "checkpoints")
        if found is None:
            refused = zyg.run("train", "--resume", str(run), "--quiet")
            if refused.returncode != 2 or "no verified checkpoint" not in refused.stderr:
                trial.error = f"resume without a checkpoint: exit {refused.returncode}: {refused.stderr[-300:]}"
                return trial
            argv = train_args(kind, runs, run_id, "--force")
            trial.restarts += 1
            kept_rows = 0
            csv.unlink(missing_ok=True)  # --force clears the run anyway; a new file may reuse the inode
        else:
            argv = ["train", "--resume", str(run), "--quiet"]
            trial.resumes += 1
            kept_rows = sum(1 for r in read_csv_rows(csv) if int(r["step"]) <= found.step)
        inode = _rows(csv)[0]
    trial.error = "did not finish after the planned kills"
    return trial


def reference_rows(ref: Path) -> int:
    from rl.core.metrics import read_csv_rows

    return len(read_csv_rows(ref / "metrics.csv"))


# -- assertions on CLI output ----------------------------------------------------------------------------

def assert_one_line_error(res, code: int, *fragments: str) -> str:
    """Exit ``code``, no traceback, exactly one ``rl: ...`` line, containing every fragment; returns it."""
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("rl: ")]
    assert len(lines) == 1, res.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert res.returncode == code, (res.returncode, lines[0])
    return lines[0]


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every entry under ``path``: file bytes, or None for a directory (symlinks as their target).

    ``.lock`` is left out: taking the run lock writes the pid into it, by design.
    """
    out: dict[str, bytes | None] = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        if rel == ".lock":
            continue
        if p.is_symlink():
            out[rel] = os.readlink(p).encode()
        elif p.is_dir():
            out[rel] = None
        else:
            out[rel] = p.read_bytes()
    return out
