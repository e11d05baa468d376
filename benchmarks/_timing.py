"""Shared helpers for the side-by-side glassnet vs PyTorch benchmarks.

Not a benchmark itself. It provides:

* :func:`time_interleaved` -- time several named callables *interleaved*
  (a, b, a, b, ...) after warm-up, so that machine noise (other jobs, CPU
  frequency changes, thermal state) hits every contender alike;
* :class:`Stats` -- median / min / mean / spread of the samples;
* :func:`print_table` -- a plain fixed-width text table;
* :func:`environment` / :func:`print_header` -- date, CPU model, thread
  counts, NumPy/BLAS and PyTorch versions, printed at the top of every run;
* :func:`dump_json` -- the environment plus all results to a JSON file;
* :func:`check_close` -- the "no fast wrong numbers" sanity check used before
  any timing.

Timing uses ``time.perf_counter``; the Python garbage collector is disabled
during each sample. Calls that take less than ``min_sample_s`` are looped
``number`` times per sample (chosen during warm-up) and the per-call time is
reported; short calls get one untimed priming call after every switch of
contender (see :func:`time_interleaved` for why). Thread counts of NumPy's BLAS and PyTorch are never changed
here: whatever they pick by default is what is measured, and the header says what that is. The scripts
only set ``OPENBLAS_THREAD_TIMEOUT`` (``_blas_env``) and glassnet's own kernel threads (``--threads``).
"""
from __future__ import annotations

import ctypes
import datetime as _dt
import gc
import glob
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Stats", "time_interleaved", "time_phases", "print_table", "environment",
    "print_header", "dump_json", "check_close", "add_common_args", "fmt_ms", "ratio",
    "add_runtime_options", "apply_runtime_options",
]


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------
@dataclass
class Stats:
    """Per-call times in seconds of one contender."""

    samples: list = field(default_factory=list)
    number: int = 1  # calls per sample

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def iqr(self) -> float:
        if len(self.samples) < 4:
            return max(self.samples) - min(self.samples)
        q = statistics.quantiles(self.samples, n=4)
        return q[2] - q[0]

    def as_dict(self) -> dict:
        return {
            "median_s": self.median, "min_s": self.min, "mean_s": self.mean,
            "iqr_s": self.iqr, "repeat": len(self.samples), "number": self.number,
            "samples_s": list(self.samples),
        }


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def fmt_ms(seconds: float, width: int = 0) -> str:
    ms = seconds * 1e3
    if ms >= 100:
        s = f"{ms:.0f}"
    elif ms >= 10:
        s = f"{ms:.1f}"
    elif ms >= 1:
        s = f"{ms:.2f}"
    else:
        s = f"{ms:.3f}"
    return s.rjust(width) if width else s


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------
def _once(fn, number):
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        if gc_was:
            gc.enable()


def time_interleaved(fns: dict, repeat: int = 7, warmup: int = 2, min_sample_s: float = 0.02,
                     number: int | None = None, prime_below_s: float = 0.05, prime: bool | None = None,
                     max_number: int = 1000, blocks: bool = False, settle_s: float = 0.3) -> dict:
    """Time the callables in ``fns`` (name -> zero-argument callable), interleaved.

    ``warmup`` untimed rounds run first (also interleaved); they also decide,
    per callable, how many back-to-back calls make one sample (``number``,
    unless given) so that one sample lasts at least ``min_sample_s``. Then
    ``repeat`` timed rounds run, each taking one sample of every contender in
    the order given, so A's i-th sample and B's i-th sample are taken back to
    back (a, b, a, b, ...) and share the machine's state at that moment.

    Switching between NumPy (OpenBLAS threads) and PyTorch (OpenMP threads)
    costs time of its own: the other library's worker threads keep spinning
    for a while after it returns and, on few cores, steal the CPU from the
    next call. So each contender's sample is preceded by one untimed
    "priming" call when the fastest contender's call is shorter than
    ``prime_below_s`` (the same decision for every contender; ``prime``
    forces it). On a 2-core machine switching changed a 2.5 ms MLP step by
    ~1.5 ms.

    With ``number`` and ``prime`` given, every contender is called exactly
    ``warmup + repeat·(number + prime)`` times (``bench_mlp`` relies on it).

    ``blocks=True`` takes all ``repeat`` samples of one contender, then all
    of the next, each block after a ``settle_s`` pause (0.3 s) and one untimed
    call: the other library's threads go to sleep first. Without the pause
    PyTorch's threads, still spinning after its autograd block, doubled the
    next glassnet block's times (SmallCNN conv2 forward 16.3 against 8.7 ms
    with it, ``bench_conv.py``, 2026-12-04) -- the untimed call alone did not
    outlast them.

    Returns name -> :class:`Stats` of per-call seconds.
    """
    names = list(fns)
    first = {k: None for k in names}
    for w in range(max(1, warmup)):
        for k in names:
            t = _once(fns[k], 1)
            first[k] = t if first[k] is None else min(first[k], t)
    nums = {}
    for k in names:
        if number is not None:
            nums[k] = int(number)
        elif first[k] < min_sample_s:
            nums[k] = int(min(max_number, math.ceil(min_sample_s / max(first[k], 1e-7))))
        else:
            nums[k] = 1
    if prime is None:
        prime = min(first.values()) < prime_below_s
    out = {k: Stats(number=nums[k]) for k in names}
    if blocks:
        for k in names:
            time.sleep(settle_s)  # the previous library's worker threads go to sleep first
            fns[k]()
            for _ in range(repeat):
                out[k].samples.append(_once(fns[k], nums[k]))
        return out
    for _ in range(repeat):
        for k in names:
            if prime:
                fns[k]()
            out[k].samples.append(_once(fns[k], nums[k]))
    return out


def time_phases(steps: dict, repeat: int = 7, warmup: int = 2) -> dict:
    """Profile steps made of phases, interleaved like :func:`time_interleaved`.

    ``steps`` maps a contender name to ``step(clock)``, which must run one
    full step and call ``clock("phase name")`` at the end of every phase; the
    time since the previous mark (or the start) is attributed to that phase.
    Returns name -> phase -> :class:`Stats` (plus ``"total"``) over
    ``repeat`` steps after ``warmup``. Each profiled step is preceded by one
    untimed priming step of the same contender. Timestamps add ~1 us per phase.
    """
    res: dict = {k: {} for k in steps}
    for i in range(warmup + repeat):
        for name, step in steps.items():
            step(lambda _phase: None)  # priming call after the switch (see time_interleaved)
            marks = []

            def clock(phase, _m=marks):
                _m.append((phase, time.perf_counter()))

            gc_was = gc.isenabled()
            gc.disable()
            try:
                t0 = time.perf_counter()
                step(clock)
                t_end = time.perf_counter()
            finally:
                if gc_was:
                    gc.enable()
            if i < warmup:
                continue
            prev = t0
            for phase, t in marks:
                res[name].setdefault(phase, Stats()).samples.append(t - prev)
                prev = t
            res[name].setdefault("total", Stats()).samples.append(t_end - t0)
    return res


# --------------------------------------------------------------------------
# correctness
# --------------------------------------------------------------------------
def check_close(name: str, got, want, rtol: float = 1e-4, atol_rel: float = 1e-5) -> float:
    """Assert ``got`` matches ``want`` elementwise, scaled to ``want``'s magnitude.

    Passes when ``|got - want| <= atol_rel * max|want| + rtol * |want|``
    everywhere (a float32 sum over thousands of terms carries an absolute
    error proportional to the largest values, not to each element). Returns
    the largest absolute difference. Raises AssertionError naming ``name``.
    """
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != reference {want.shape}"
    scale = float(np.abs(want).max()) if want.size else 0.0
    diff = np.abs(got - want)
    ok = diff <= atol_rel * scale + rtol * np.abs(want)
    maxdiff = float(diff.max()) if diff.size else 0.0
    assert bool(np.all(np.isfinite(got))), f"{name}: non-finite values in glassnet result"
    assert bool(ok.all()), (
        f"{name}: glassnet and PyTorch disagree: max |diff| = {maxdiff:.3g} "
        f"(reference max |value| {scale:.3g}, rtol {rtol}, atol {atol_rel}*max)")
    return maxdiff


# --------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    keep = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile"]
                    return " ".join(k for k in keep if k in flags)
    except OSError:
        pass
    return ""


def _blas_info() -> dict:
    """What NumPy's BLAS is and how many threads it uses (no extra packages)."""
    info: dict = {}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["name"] = blas.get("name")
        info["version"] = blas.get("version")
        info["config"] = blas.get("openblas configuration")
    except Exception as e:  # pragma: no cover - older NumPy
        info["error"] = repr(e)
    try:
        import threadpoolctl  # optional, never installed by these scripts

        info["threadpoolctl"] = [
            {k: d.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
            for d in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        pass
    # OpenBLAS bundled with NumPy wheels: ask it directly through ctypes.
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                    "openblas_get_num_threads64_", "openblas_get_num_threads"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                info["num_threads"] = int(fn())
                break
        for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                    "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                v = fn()
                info["core"] = v.decode() if v else None
                break
        break
    return info


def environment() -> dict:
    """Everything that decides a CPU timing, as a dict (printed and dumped)."""
    env = {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas_info(),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                   "MKL_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")
                       if k in os.environ},
    }
    try:
        env["loadavg"] = os.getloadavg()
    except OSError:
        pass
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        env["torch_interop_threads"] = torch.get_num_interop_threads()
        env["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    except ImportError:
        env["torch"] = None
    try:
        import glassnet

        env["glassnet"] = getattr(glassnet, "__version__", "?")
        from glassnet.threads import get_num_threads

        env["glassnet_kernel_threads"] = get_num_threads()
    except ImportError:
        env["glassnet"] = None
    return env


def print_header(title: str, env: dict, settings: dict | None = None) -> None:
    b = env.get("blas", {})
    blas = f"{b.get('name')} {b.get('version')}"
    if b.get("core"):
        blas += f" (core {b['core']})"
    lines = [
        f"== {title} ==",
        f"date      {env['date']}",
        f"cpu       {env['cpu']}  [{env['cpu_flags']}]  logical cpus {env['logical_cpus']}"
        f" (usable {env['affinity_cpus']})",
        f"load avg  {' '.join(f'{x:.2f}' for x in env.get('loadavg', ()))}",
        f"python    {env['python']}   numpy {env['numpy']}   torch {env.get('torch')}"
        f"   glassnet {env.get('glassnet')}",
        f"threads   torch {env.get('torch_threads')} (interop {env.get('torch_interop_threads')}),"
        f" numpy BLAS {blas}: {b.get('num_threads', '?')} threads"
        + (f", env {env['thread_env']}" if env["thread_env"] else ""),
    ]
    if settings:
        lines.append("settings  " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    la = env.get("loadavg")
    ncpu = env.get("affinity_cpus") or env.get("logical_cpus") or 1
    if la and la[0] > 0.5 * ncpu:
        lines.append(f"WARNING   1-min load average {la[0]:.2f} on {ncpu} cpus: other processes are "
                     "competing for the cores; timings (multi-threaded BLAS/OpenMP especially) will be "
                     "noisy and slower than on an idle machine")
    print("\n".join(lines), flush=True)


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------
def print_table(headers: list, rows: list, title: str | None = None) -> None:
    """Fixed-width table; the first column is left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r):
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))

    if title:
        print(f"\n{title}")
    print(fmt(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(fmt(r))
    sys.stdout.flush()


def _jsonable(o):
    if isinstance(o, Stats):
        return o.as_dict()
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def dump_json(path: str, env: dict, settings: dict, results) -> None:
    payload = {"environment": env, "settings": settings, "results": results}
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_jsonable(payload), f, indent=1)
    os.replace(tmp, path)
    print(f"\nwrote {path}")


def add_common_args(parser, default_repeat: int, quick_repeat: int, default_warmup: int = 1,
                    quick_warmup: int = 1) -> None:
    parser.add_argument("--repeat", type=int, default=None,
                        help=f"timed repetitions per contender (default {default_repeat}, "
                             f"{quick_repeat} with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help=f"untimed warm-up rounds (default {default_warmup}, {quick_warmup} with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions / smaller set, for a smoke run")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write all results to PATH as JSON")


def add_runtime_options(parser) -> None:
    """``--default-malloc`` (skip :func:`glassnet.backend.retain_freed_memory`,
    applied by default) and ``--threads`` (glassnet's kernel threads)."""
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc malloc at its defaults (by default the script calls "
                             "glassnet.backend.retain_freed_memory(), as glassnet train does)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="glassnet.threads.set_num_threads(N) for the kernels' passes and GEMMs "
                             "(default: glassnet's own default, every core, as glassnet train has it)")
    parser.add_argument("--blas-threads", choices=["held", "own"], default="held",
                        help="held (glassnet's default): BLAS held to one thread inside glassnet's kernels, "
                             "GEMMs split over glassnet's threads; own: GEMMs on BLAS's own threads "
                             "(set_num_threads(N, hold_blas=False), the earlier behaviour; with --threads 1 "
                             "what `import glassnet` gave before)")


def apply_runtime_options(args, quiet: bool = False) -> None:
    """Apply ``retain_freed_memory`` unless ``--default-malloc`` was given, set
    glassnet's kernel threads, and say so (unless ``quiet``)."""
    from glassnet.threads import blas_threads_spin, set_num_threads

    if not args.default_malloc:
        from glassnet.backend import retain_freed_memory

        applied = retain_freed_memory()
        if not quiet:
            print(f"malloc    retain_freed_memory() applied: {applied} "
                  "(process-wide: both libraries; --default-malloc to skip)")
    from glassnet.threads import get_num_threads, holds_blas

    if args.threads is not None or args.blas_threads == "own":
        set_num_threads(args.threads, hold_blas=False if args.blas_threads == "own" else None)
    n = get_num_threads()
    if quiet:
        return
    spin = "spin after GEMMs" if blas_threads_spin() else "sleep after GEMMs"
    how = ("BLAS held to 1 thread in glassnet's kernels, GEMMs split over glassnet's threads" if holds_blas()
           else f"GEMMs on BLAS's own threads, which {spin}")
    print(f"threads   glassnet kernel threads: {n}; {how}; OPENBLAS_THREAD_TIMEOUT="
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}")


def apply_malloc_option(args) -> None:
    """Apply ``retain_freed_memory`` unless ``--default-malloc`` was given, and say so."""
    if not args.default_malloc:
        from glassnet.backend import retain_freed_memory

        print(f"malloc    retain_freed_memory() applied: {retain_freed_memory()} "
              "(process-wide: both libraries; --default-malloc to skip)")
