"""The fuzzing harness every reader target runs under (see tests/fuzz/README.md).

One *campaign* fuzzes one target (:mod:`tests.fuzz.targets`) in a child
process, so that whatever an input does to that process -- a SIGSEGV, memory
exhaustion, an endless loop in C code -- is seen from outside and reported
with the input that did it:

* the parent builds the target's seed files (it may import torch and Pillow),
  then starts ``python -m tests.fuzz.runner _child ...``;
* the child imports the readers, runs each seed once (so lazy imports and
  allocator arenas are in place), reads its virtual size from
  ``/proc/self/status`` and sets ``RLIMIT_AS`` to that *baseline + cap*
  (default 1 GiB + 512 MiB: the readers' documented default limit,
  :func:`glassnet.limits.default_max_bytes` = 1 GiB, plus room for one
  temporary copy); a reader that tries to allocate more gets ``MemoryError``;
* every input is written as files into a per-child folder on ``/dev/shm``
  (``case/``) before any reader sees it, and each reader runs under two
  clocks: ``SIGALRM`` after ``soft_timeout`` seconds raises
  :class:`InputTimeout` in Python code, and the parent's watchdog, which
  reads the heartbeat the child writes before each reader, sends SIGABRT
  (faulthandler prints the stack) when one input has run ``hard_timeout``
  seconds -- even a child stuck inside C code;
* the outcome of each reader on each input is one of :data:`OK_KINDS`
  (``load``: returned a value its oracle accepts; ``error``: raised a
  :class:`glassnet.errors.GlassnetError`) or of :data:`FAIL_KINDS`
  (``other``: any other exception; ``memory``: a ``MemoryError``, raised or
  hidden in the ``__cause__``/``__context__`` chain of a glassnet error;
  ``timeout``; ``violation``: the target's oracle rejected a load, e.g. a
  failed load that changed the model; ``crash``: the child died);
* failures are grouped by signature (reader, kind, exception type, innermost
  glassnet frame) and the smallest input of each is saved under
  ``WORK/failures/`` with its traceback; a dead child's last input is read
  back from its ``case/`` folder.

Inputs come from the target's hypothesis strategy. ``shrink=True`` (what the
pytest tests use) stops at the first failure and lets hypothesis shrink it;
``shrink=False`` (campaigns) goes on and counts everything. A child that dies
is restarted with another seed until the requested number of inputs ran.

Command line::

    python -m tests.fuzz.runner list
    python -m tests.fuzz.runner campaign idx safetensors --examples 20000 --seed 1 --out /tmp/fuzz
    python -m tests.fuzz.runner replay idx /tmp/fuzz/idx/failures/1-other-...   # in-process, with tracebacks
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import faulthandler
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30
MIB = 1 << 20

#: outcomes that keep the contract
OK_KINDS = ("load", "error")
#: outcomes that break it
FAIL_KINDS = ("other", "memory", "timeout", "violation", "crash")
KINDS = OK_KINDS + FAIL_KINDS

DEFAULT_CAP = GIB + 512 * MIB
DEFAULT_SOFT_TIMEOUT = 10.0
#: a reader's slowest input is kept (WORK/child-N/slowest/READER/) when it took longer than this
SLOW_INPUT_S = 1.0
DEFAULT_HARD_TIMEOUT = 30.0

#: environment of the child: one thread per library, so the address space stays predictable
CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "MALLOC_ARENA_MAX": "2", "GLASSNET_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


class InputTimeout(BaseException):
    """Raised by SIGALRM when one reader ran past the soft time limit on one input.
    A BaseException, so that a reader's ``except Exception`` cannot swallow it."""


class ContractViolation(AssertionError):
    """A target's oracle found a load that is wrong (not an exception of the reader itself)."""


class _StopCampaign(Exception):
    """Raised inside the hypothesis test in shrink mode to make hypothesis shrink the input."""


@dataclasses.dataclass
class Reader:
    """One function under test: ``fn(case_dir)`` reads the case's files and returns
    the loaded value (raising :class:`ContractViolation` when its own check fails)."""

    name: str
    fn: object


# ---------------------------------------------------------------- helpers
def write_case(case: dict, case_dir: Path) -> None:
    """Write ``case`` (relative path -> bytes) as files under a fresh ``case_dir``."""
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    for rel, data in case.items():
        p = case_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def read_case(case_dir: Path) -> dict:
    """The files under ``case_dir`` as a case (relative path -> bytes)."""
    out = {}
    for p in sorted(Path(case_dir).rglob("*")):
        if p.is_file() and p.name != "info.json":
            out[str(p.relative_to(case_dir))] = p.read_bytes()
    return out


def case_size(case: dict) -> int:
    return sum(len(v) for v in case.values())


def memory_in_chain(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by / raised while handling, a ``MemoryError``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MemoryError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _location(exc: BaseException) -> str:
    """``file:line`` of the innermost traceback frame in glassnet (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    pick = None
    for fr in frames:
        if f"{os.sep}glassnet{os.sep}" in fr.filename:
            pick = fr
    if pick is None and frames:
        pick = frames[-1]
    if pick is None:
        return "?"
    fn = pick.filename
    for marker in (f"{os.sep}glassnet{os.sep}", f"{os.sep}site-packages{os.sep}", f"{os.sep}lib{os.sep}python"):
        if marker in fn:
            fn = fn[fn.index(marker) + 1:]
            break
    return f"{fn}:{pick.lineno}"


def classify(exc: BaseException | None) -> str:
    if exc is None:
        return "load"
    if isinstance(exc, InputTimeout):
        return "timeout"
    if isinstance(exc, ContractViolation):
        return "violation"
    if memory_in_chain(exc):
        return "memory"
    from glassnet.errors import GlassnetError
    if isinstance(exc, GlassnetError):
        return "error"
    return "other"


def _signature(reader: str, kind: str, exc: BaseException) -> str:
    if kind == "violation":
        what = str(exc).split(":", 1)[0][:80]
        cause = exc.__cause__
        if cause is not None:  # e.g. the exception a training step raised after a load
            what += f"|{type(cause).__name__}|{_location(cause)}"
        return f"{reader}|{kind}|{what}"
    return f"{reader}|{kind}|{type(exc).__name__}|{_location(exc)}"


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")  # pragma: no cover


def _short_exc(exc: BaseException, n: int = 600) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= n else text[: n - 3] + "..."


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text)
    return "-".join(p for p in keep.split("-") if p)[:60]


# ------------------------------------------------------------------- child
def fast_tmp_dir() -> str:
    """A folder for the files written for every input: ``/dev/shm`` (tmpfs) where there is one,
    as creating files on a disk-backed ``/tmp`` can cost milliseconds each; else the temp folder."""
    import tempfile
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return tempfile.gettempdir()


def opts_hot_dir(work: Path) -> str:
    """The child's per-input folder (in :func:`fast_tmp_dir`), named in ``work/hot-dir`` for the parent."""
    marker = Path(work) / "hot-dir"
    if marker.exists():
        return marker.read_text()
    import tempfile
    hot = tempfile.mkdtemp(prefix="glassnet-fuzz-", dir=fast_tmp_dir())
    marker.write_text(hot)
    return hot


class _ChildState:
    """Runs cases and keeps the counts, the smallest failing case per signature, and progress files."""

    def __init__(self, target, work: Path, soft: float, hard: float, shrink: bool):
        self.target = target
        self.work = work
        hot = Path(opts_hot_dir(work))
        self.case_dir = hot / "case"
        self._reader_fd = os.open(hot / "current-reader", os.O_RDWR | os.O_CREAT, 0o644)
        self.fail_dir = work / "failures"
        self.fail_dir.mkdir(parents=True, exist_ok=True)
        self.soft, self.hard, self.shrink = soft, hard, shrink
        self.inputs = 0
        self.counts = {r.name: dict.fromkeys(KINDS, 0) for r in target.readers}
        self.slowest = {r.name: 0.0 for r in target.readers}
        self.failures: dict[str, dict] = {}
        self.t0 = time.time()
        self._last_progress = 0.0

    def _on_alarm(self, signum, frame):
        raise InputTimeout(f"reader ran past {self.soft} s")

    def run_case(self, case: dict) -> bool:
        """Run every reader on ``case``; True when one of them broke the contract."""
        self._set_reader("(writing the case)")
        write_case(case, self.case_dir)
        self.inputs += 1
        failed = False
        for reader in self.target.readers:
            self._set_reader(reader.name)
            exc = None
            start = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, self.soft)
            try:
                reader.fn(self.case_dir)
            except BaseException as e:  # noqa: BLE001 - classified below
                if isinstance(e, KeyboardInterrupt):
                    raise
                exc = e
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed = time.perf_counter() - start
            if elapsed > self.slowest[reader.name]:
                self.slowest[reader.name] = elapsed
                if elapsed > SLOW_INPUT_S:  # keep the slowest input of each reader (a near-hang?)
                    write_case(case, self.work / "slowest" / _slug(reader.name))
            kind = classify(exc)
            self.counts[reader.name][kind] += 1
            if kind in FAIL_KINDS:
                failed = True
                self._record_failure(reader.name, kind, exc, case)
            exc = None
        self._set_reader("(generating the next input)")
        now = time.time()
        if now - self._last_progress > 2.0:
            self._last_progress = now
            self.write_json("progress.json")
        return failed

    def _set_reader(self, name: str) -> None:
        """The heartbeat the parent's watchdog reads: CLOCK_MONOTONIC time and what runs now."""
        line = f"{time.monotonic():.3f} {name}".encode()[:255].ljust(256)
        os.pwrite(self._reader_fd, line, 0)

    def _record_failure(self, reader, kind, exc, case):
        sig = _signature(reader, kind, exc)
        old = self.failures.get(sig)
        size = case_size(case)
        if old is not None:
            old["count"] += 1
            if size >= old["size"]:
                return
        else:
            old = {"count": 1}
            self.failures[sig] = old
        folder = self.fail_dir / (old.get("folder") or f"{len(self.failures)}-{kind}-{_slug(sig)}")
        write_case(case, folder)
        tb = "".join(traceback.format_exception(exc))[-4000:]
        old.update(signature=sig, reader=reader, kind=kind, size=size, folder=folder.name,
                   exception=_short_exc(exc), traceback=tb)
        (folder / "info.json").write_text(json.dumps(old, indent=1))

    def report(self) -> dict:
        return {"target": self.target.name, "inputs": self.inputs, "counts": self.counts,
                "slowest_s": {k: round(v, 3) for k, v in self.slowest.items()},
                "failures": list(self.failures.values()), "wall_s": round(time.time() - self.t0, 1),
                "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}

    def write_json(self, name, extra=None):
        data = self.report()
        data.update(extra or {})
        tmp = self.work / (name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.work / name)


def _child_main(opts: dict) -> int:
    from tests.fuzz import targets as targets_mod

    faulthandler.enable(file=sys.stderr, all_threads=True)
    work = Path(opts["work"])
    target = targets_mod.get(opts["target"])
    target.scratch = Path(opts_hot_dir(work)) / "scratch"  # removed with the hot folder by the parent
    target.setup(Path(opts["seeds"]))
    state = _ChildState(target, work, opts["soft_timeout"], opts["hard_timeout"], opts["shrink"])
    signal.signal(signal.SIGALRM, state._on_alarm)

    # Warm up on the seeds (imports, arenas), then cap the address space.
    for case in target.seed_cases()[:8]:
        state.run_case(case)
    state.inputs = 0
    state.counts = {r.name: dict.fromkeys(KINDS, 0) for r in target.readers}
    import gc
    gc.collect()
    baseline = _vm_size()
    cap = int(opts["cap"])
    limit = baseline + cap
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    mem = {"baseline_vm": baseline, "cap": cap, "rlimit_as": limit}
    state.write_json("progress.json", {"memory": mem})

    from hypothesis import HealthCheck, Phase, Verbosity, given, seed as hseed, settings

    phases = [Phase.generate] + ([Phase.shrink] if opts["shrink"] else [])
    fuzz_settings = settings(max_examples=int(opts["examples"]), deadline=None, database=None,
                             derandomize=opts["seed"] is None, suppress_health_check=list(HealthCheck),
                             phases=phases, report_multiple_bugs=False, verbosity=Verbosity.quiet,
                             print_blob=False)

    @fuzz_settings
    @given(target.strategy())
    def fuzz(case):
        if state.run_case(case) and opts["shrink"]:
            raise _StopCampaign()

    if opts["seed"] is not None:
        fuzz = hseed(int(opts["seed"]))(fuzz)
    try:
        fuzz()
    except _StopCampaign:
        pass
    except Exception as exc:  # noqa: BLE001 - a bug of the harness (e.g. in a strategy), not of a reader
        exc.__notes__ = []
        state.write_json("report.json", {"memory": mem, "harness_error": "".join(
            traceback.format_exception(exc))[-3000:]})
        return 2
    state.write_json("report.json", {"memory": mem})
    return 0


# ------------------------------------------------------------------ parent
@dataclasses.dataclass
class CampaignResult:
    target: str
    inputs: int
    counts: dict
    failures: list
    memory: dict
    wall_s: float
    slowest_s: dict
    work: Path
    children: int = 1

    @property
    def ok(self) -> bool:
        return not self.failures

    def describe_failures(self, with_bytes: bool = True, limit: int = 4000) -> str:
        lines = []
        for f in self.failures:
            lines.append(f"- [{f['kind']}] {f['signature']}  (x{f['count']}, smallest input "
                         f"{f['size']} bytes, saved in {f['path']})")
            lines.append(f"    {f['exception']}")
            if with_bytes:
                case = read_case(Path(f["path"]))
                for rel, data in case.items():
                    b64 = base64.b64encode(data).decode()
                    if len(b64) > limit:
                        b64 = b64[:limit] + f"... ({len(data)} bytes)"
                    lines.append(f"    {rel} (base64): {b64}")
            if f.get("traceback"):
                tail = f["traceback"].strip().splitlines()[-6:]
                lines.extend("      " + t for t in tail)
        return "\n".join(lines)


def _watch(proc, child_work: Path, hard_timeout: float, total_left):
    """Wait for the child; its output, or ``(output,)`` after killing a child whose heartbeat
    stood still for ``hard_timeout`` seconds (SIGABRT first: faulthandler prints where it was),
    or ``None`` when ``total_left`` seconds passed."""
    import threading
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    t0 = time.monotonic()
    beat_file = None
    stuck = False
    while True:
        try:
            proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if total_left is not None and now - t0 > total_left:
            proc.kill()
            proc.wait()
            reader.join()
            return None
        if beat_file is None and (child_work / "hot-dir").exists():
            beat_file = Path((child_work / "hot-dir").read_text()) / "current-reader"
        try:
            stamp = float(beat_file.read_bytes().split(b" ", 1)[0]) if beat_file is not None else None
        except (OSError, ValueError):
            stamp = None
        if stamp is not None and now - stamp > hard_timeout:
            stuck = True
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            break
    reader.join()
    out = b"".join(chunks)
    return (out,) if stuck else out


def _merge_counts(total: dict, part: dict) -> None:
    for reader, kinds in part.items():
        row = total.setdefault(reader, dict.fromkeys(KINDS, 0))
        for k, v in kinds.items():
            row[k] = row.get(k, 0) + v


def run_campaign(target_name: str, examples: int, *, work, seed: int | None = None, shrink: bool = False,
                 cap: int = DEFAULT_CAP, soft_timeout: float = DEFAULT_SOFT_TIMEOUT,
                 hard_timeout: float = DEFAULT_HARD_TIMEOUT, total_timeout: float | None = None,
                 max_children: int = 20, log=None) -> CampaignResult:
    """Fuzz ``target_name`` with ``examples`` inputs in capped child processes; return the result.

    ``seed=None`` is hypothesis' derandomized (fixed) run; a child that dies is
    restarted (with seed ``seed + n``) until ``examples`` inputs ran, unless
    ``shrink`` (stop at the first failure) or ``max_children`` children died.
    """
    from tests.fuzz import targets as targets_mod

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    target = targets_mod.get(target_name)
    seeds = work / "seeds"
    if not seeds.exists() or not any(seeds.iterdir()):
        seeds.mkdir(parents=True, exist_ok=True)
        target.build_seeds(seeds)
    env = dict(os.environ)
    env.update(CHILD_ENV)
    env.pop("GLASSNET_DATA", None)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    t_start = time.time()
    _cleanup_later: list = []
    counts: dict = {}
    failures: dict = {}
    memory: dict = {}
    slowest: dict = {}
    done = 0
    children = 0
    try:
        while done < examples and children < max_children:
            child_work = work / f"child-{children}"
            if child_work.exists():
                shutil.rmtree(child_work)
            child_work.mkdir()
            child_seed = None if seed is None and children == 0 else (seed or 0) + children
            opts = {"target": target_name, "examples": examples - done, "seed": child_seed, "shrink": shrink,
                    "work": str(child_work), "seeds": str(seeds), "cap": cap, "soft_timeout": soft_timeout,
                    "hard_timeout": hard_timeout}
            children += 1
            left = None if total_timeout is None else max(1.0, total_timeout - (time.time() - t_start))
            proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.runner", "_child", json.dumps(opts)],
                                    cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            killed, stuck = False, False
            out = _watch(proc, child_work, hard_timeout, left)
            if out is None:  # the campaign's total time ran out
                proc.kill()
                out = proc.communicate()[0]
                killed = True
            elif isinstance(out, tuple):
                out, stuck = out[0], True
            out = out.decode("utf-8", "replace")
            _cleanup_later.append(child_work)
            report_path = child_work / "report.json"
            report = json.loads(report_path.read_text()) if report_path.exists() else None
            if report is None and (child_work / "progress.json").exists():
                progress = json.loads((child_work / "progress.json").read_text())
            else:
                progress = report
            if progress:
                _merge_counts(counts, progress["counts"])
                memory = progress.get("memory", memory)
                for k, v in progress.get("slowest_s", {}).items():
                    slowest[k] = max(slowest.get(k, 0.0), v)
                done += progress["inputs"]
                for f in progress["failures"]:
                    f = dict(f, path=str(child_work / "failures" / f["folder"]))
                    old = failures.get(f["signature"])
                    if old is None or f["size"] < old["size"]:
                        if old is not None:
                            f["count"] += old["count"]
                        failures[f["signature"]] = f
                    else:
                        old["count"] += f["count"]
            if report is not None and report.get("harness_error"):
                raise RuntimeError(f"fuzz target {target_name}: the harness failed:\n{report['harness_error']}")
            if report is not None:  # the child finished
                if (shrink and report["failures"]) or report["inputs"] < opts["examples"]:
                    break  # stopped at a failure to shrink it, or hypothesis ran out of inputs
                continue
            # The child died: its last input is in its hot folder.
            hot = Path((child_work / "hot-dir").read_text()) if (child_work / "hot-dir").exists() else None
            reader, case = "?", {}
            if hot is not None and (hot / "current-reader").exists():
                beat = (hot / "current-reader").read_bytes().decode("utf-8", "replace").strip()
                reader = beat.split(" ", 1)[1] if " " in beat else "?"
                case = read_case(hot / "case") if (hot / "case").exists() else {}
            rc = proc.returncode
            how = ("killed after the campaign's total timeout" if killed else
                   f"hang: no progress for {hard_timeout:g} s on one input (watchdog; traceback by SIGABRT)"
                   if stuck else f"killed by signal {signal.Signals(-rc).name}" if rc < 0 else
                   f"exited with status {rc}")
            if reader == "?" or reader.startswith("(") or not case:
                raise RuntimeError(f"fuzz child for {target_name} died outside a reader, in {reader} ({how}):\n"
                                   f"{out[-4000:]}")
            counts.setdefault(reader, dict.fromkeys(KINDS, 0))["crash"] += 1
            done += 1
            sig = f"{reader}|crash|{how.split(' (')[0]}"
            folder = work / "failures" / f"crash-{children - 1}-{_slug(reader)}"
            write_case(case, folder)
            info = {"signature": sig, "reader": reader, "kind": "crash", "size": case_size(case),
                    "folder": folder.name, "path": str(folder), "count": 1, "exception": how,
                    "traceback": out[-3000:]}
            (folder / "info.json").write_text(json.dumps(info, indent=1))
            old = failures.get(sig)
            if old is None or info["size"] < old["size"]:
                info["count"] += old["count"] if old else 0
                failures[sig] = info
            else:
                old["count"] += 1
            if log:
                log(f"{target_name}: child died ({how}) on reader {reader}; restarting")
            if shrink or killed:
                break
    finally:  # the children's tmpfs folders, also when a harness error is raised
        for cw in _cleanup_later:
            marker = cw / "hot-dir"
            if marker.exists():
                shutil.rmtree(marker.read_text(), ignore_errors=True)
    return CampaignResult(target=target_name, inputs=done, counts=counts, failures=list(failures.values()),
                          memory=memory, wall_s=round(time.time() - t_start, 1), slowest_s=slowest,
                          work=work, children=children)


def format_table(results) -> str:
    """A markdown table: target, reader, inputs, outcomes, memory cap."""
    head = ("| target | reader | inputs | load | glassnet error | other | memory | timeout | violation "
            "| crash | cap (baseline VM + cap) | slowest input |")
    rows = [head, "|" + " --- |" * 12]
    for r in results:
        mem = r.memory
        cap = (f"{mem['baseline_vm'] / MIB:.0f} MiB + {mem['cap'] / MIB:.0f} MiB" if mem else "?")
        for reader, c in r.counts.items():
            n = sum(c.values())
            rows.append(f"| {r.target} | {reader} | {n} | {c['load']} | {c['error']} | {c['other']} | "
                        f"{c['memory']} | {c['timeout']} | {c['violation']} | {c['crash']} | {cap} | "
                        f"{r.slowest_s.get(reader, 0):.2f} s |")
    return "\n".join(rows)


# ----------------------------------------------------------- pytest entry
#: inputs per target in CI (overridden by GLASSNET_FUZZ_EXAMPLES)
CI_EXAMPLES = 150


def assert_clean(target_name: str, tmp_path, examples: int | None = None) -> CampaignResult:
    """What each ``test_fuzz_<target>.py`` calls: a shrinking campaign of ``examples``
    inputs (``$GLASSNET_FUZZ_EXAMPLES``, else the target's CI count); fails listing
    every contract break with its reproducer."""
    from tests.fuzz import targets as targets_mod

    env_n = os.environ.get("GLASSNET_FUZZ_EXAMPLES")
    n = int(env_n) if env_n else (examples or targets_mod.get(target_name).ci_examples or CI_EXAMPLES)
    env_seed = os.environ.get("GLASSNET_FUZZ_SEED")
    result = run_campaign(target_name, n, work=tmp_path / target_name, shrink=True,
                          seed=int(env_seed) if env_seed else None)
    assert result.ok, (f"fuzz target {target_name!r}: {len(result.failures)} contract break(s) in "
                       f"{result.inputs} inputs:\n{result.describe_failures()}")
    assert result.inputs >= min(n, 10), f"only {result.inputs} inputs ran"
    return result


# ------------------------------------------------------------------- CLI
def _replay(target_name: str, folders, cap: int | None = DEFAULT_CAP) -> int:
    from tests.fuzz import targets as targets_mod

    target = targets_mod.get(target_name)
    import tempfile
    seeds = Path(tempfile.mkdtemp(prefix=f"glassnet-fuzz-seeds-{target_name}-"))
    target.build_seeds(seeds)
    target.setup(seeds)
    if cap:  # the campaign's cap, so that a "memory" failure reproduces as one
        baseline = _vm_size()
        resource.setrlimit(resource.RLIMIT_AS, (baseline + cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
        print(f"memory cap: {baseline / MIB:.0f} MiB baseline VM + {cap / MIB:.0f} MiB")
    bad = 0
    for folder in folders:
        case = read_case(Path(folder))
        work = Path(tempfile.mkdtemp(prefix="glassnet-fuzz-replay-"))
        write_case(case, work / "case")
        print(f"== {folder} ({case_size(case)} bytes in {len(case)} file(s))")
        for reader in target.readers:
            exc = None
            try:
                reader.fn(work / "case")
            except BaseException as e:  # noqa: BLE001
                exc = e
            kind = classify(exc)
            print(f"  {reader.name}: {kind}" + ("" if exc is None else f": {_short_exc(exc, 300)}"))
            if kind in FAIL_KINDS:
                bad += 1
                traceback.print_exception(exc)
    return 1 if bad else 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        return _child_main(json.loads(argv[1]))
    from tests.fuzz import targets as targets_mod

    p = argparse.ArgumentParser(prog="python -m tests.fuzz.runner", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the targets")
    c = sub.add_parser("campaign", help="fuzz targets and print the outcome table")
    c.add_argument("targets", nargs="*", help="targets (default: all)")
    c.add_argument("--examples", type=int, default=20000, help="inputs per target (default 20000)")
    c.add_argument("--seed", type=int, default=1, help="hypothesis seed (default 1)")
    c.add_argument("--out", default="/tmp/glassnet-fuzz", help="work folder (default /tmp/glassnet-fuzz)")
    c.add_argument("--cap-mib", type=int, default=DEFAULT_CAP // MIB, help="address-space cap above the baseline")
    c.add_argument("--soft-timeout", type=float, default=DEFAULT_SOFT_TIMEOUT)
    c.add_argument("--hard-timeout", type=float, default=DEFAULT_HARD_TIMEOUT)
    c.add_argument("--shrink", action="store_true", help="stop at the first failure and shrink it")
    c.add_argument("--json", help="also write the results as JSON to this file")
    r = sub.add_parser("replay", help="run a target's readers on saved case folders, in this process")
    r.add_argument("target")
    r.add_argument("folders", nargs="+")
    r.add_argument("--cap-mib", type=int, default=DEFAULT_CAP // MIB, help="address-space cap (0: none)")
    args = p.parse_args(argv)
    if args.cmd == "list":
        for t in (t for t in targets_mod.TARGETS.values() if not t.name.startswith("_")):
            print(f"{t.name:18} {', '.join(r.name for r in t.readers)}")
            print(f"{'':18} {t.description}")
        return 0
    if args.cmd == "replay":
        return _replay(args.target, args.folders, args.cap_mib * MIB)
    names = args.targets or [n for n in targets_mod.TARGETS if not n.startswith("_")]
    results = []
    for name in names:
        print(f"== {name}: {args.examples} inputs", flush=True)
        res = run_campaign(name, args.examples, work=Path(args.out) / name, seed=args.seed, shrink=args.shrink,
                           cap=args.cap_mib * MIB, soft_timeout=args.soft_timeout, hard_timeout=args.hard_timeout,
                           log=print)
        results.append(res)
        print(format_table([res]))
        if res.failures:
            print(res.describe_failures(with_bytes=True, limit=600))
        print(f"({res.inputs} inputs in {res.wall_s} s, {res.children} child process(es))", flush=True)
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps([dict(dataclasses.asdict(r), work=str(r.work)) for r in results],
                                              indent=1, default=str))
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    # Run as tests.fuzz.runner (not __main__), so that the targets' ContractViolation is this module's.
    from tests.fuzz import runner as _runner
    sys.exit(_runner.main())
