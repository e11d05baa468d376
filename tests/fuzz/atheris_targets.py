"""Coverage-guided fuzzing of the readers with atheris (libFuzzer), by hand.

    pip install atheris            # not a dependency of glassnet: install it in your venv to use this
    python -m tests.fuzz.atheris_targets list
    python -m tests.fuzz.atheris_targets idx -runs=20000
    python -m tests.fuzz.atheris_targets pth -max_total_time=600 -jobs=2 /tmp/corpus-pth
    python -m tests.fuzz.atheris_targets checkpoint_rewrite --structured -runs=5000

Each target of :mod:`tests.fuzz.targets` is an entry. By default libFuzzer
mutates the target's file(s) directly: ``target.from_bytes`` turns its bytes
into a case (the file itself, or a few files split by a length prefix), and
the corpus starts from the target's seed files (written into
``/tmp/glassnet-atheris/<target>/corpus`` unless a corpus folder is given).
``--structured`` instead feeds libFuzzer's bytes to the target's hypothesis
strategy (``fuzz_one_input``), the same generator the pytest targets use.

glassnet's modules are instrumented for coverage (``atheris.instrument_imports``).
The same contract and memory cap as :mod:`tests.fuzz.runner` apply: the
address space is capped at the baseline + ``--cap-mib`` (default 1536 MiB,
and ``-rss_limit_mb`` is set to match), libFuzzer's ``-timeout`` (default 30 s
here) catches hangs, and any outcome other than a load its oracle accepts or
a :class:`glassnet.errors.GlassnetError` raises, so libFuzzer stops and
writes the input as ``/tmp/glassnet-atheris/<target>/crash-<sha1>``. Replay such a file with
``python -m tests.fuzz.atheris_targets <target> crash-<sha1>``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class ContractBroken(Exception):
    """What TestOneInput raises for an outcome the contract forbids (libFuzzer then saves the input)."""


def _build_seeds(target: str, seed_dir: Path) -> None:
    """Seed files are built in a subprocess, so torch (for .pth seeds) stays out of the fuzzed process."""
    code = ("import sys; from pathlib import Path; from tests.fuzz import targets; "
            "targets.get(sys.argv[1]).build_seeds(Path(sys.argv[2]))")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code, target, str(seed_dir)], check=True, cwd=REPO_ROOT, env=env)


def _hot_dir(name: str, base: str) -> Path:
    """``BASE/glassnet-atheris-NAME-PID`` for the files of each input; the folders of processes
    that are gone (libFuzzer exits without Python's atexit) are removed first."""
    import shutil
    for old in Path(base).glob(f"glassnet-atheris-{name}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    hot = Path(base) / f"glassnet-atheris-{name}-{os.getpid()}"
    hot.mkdir(exist_ok=True)
    return hot


def _vm_and_rss() -> tuple[int, int]:
    vm = rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                vm = int(line.split()[1]) * 1024
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return vm, rss


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.atheris_targets", add_help=True,
                                description="atheris/libFuzzer entry points, one per reader target; arguments "
                                            "after ours go to libFuzzer (e.g. -runs=20000, a corpus folder)")
    p.add_argument("target", help="a target name (see `list`)")
    p.add_argument("--structured", action="store_true", help="drive the target's hypothesis strategy")
    p.add_argument("--cap-mib", type=int, default=1536, help="address-space cap above the baseline (MiB)")
    p.add_argument("--work", default=None, help="folder for seeds and the default corpus")
    args, fuzzer_args = p.parse_known_args(argv)

    import atheris

    with atheris.instrument_imports(include=["glassnet"]):
        import glassnet  # noqa: F401
        import glassnet.inference.images  # noqa: F401
        import glassnet.data.datasets  # noqa: F401
        import glassnet.data.idx  # noqa: F401
        import glassnet.io.checkpoint  # noqa: F401
        import glassnet.io.checkpoint_file  # noqa: F401
        import glassnet.io.pth  # noqa: F401
        import glassnet.io.run_dir  # noqa: F401
        import glassnet.io.state_dict_file  # noqa: F401

    from tests.fuzz import runner
    from tests.fuzz import targets as targets_mod

    if args.target == "list":
        for t in (t for t in targets_mod.TARGETS.values() if not t.name.startswith("_")):
            print(f"{t.name:18} {t.description}")
        return 0
    target = targets_mod.get(args.target)
    work = Path(args.work or Path(tempfile.gettempdir()) / "glassnet-atheris" / target.name)
    hot = _hot_dir(target.name, runner.fast_tmp_dir())
    target.scratch = hot / "scratch"
    seeds = work / "seeds"
    if not seeds.exists() or not any(seeds.iterdir()):
        seeds.mkdir(parents=True, exist_ok=True)
        _build_seeds(target.name, seeds)
    target.setup(seeds)

    # Default corpus: the seeds in from_bytes form (raw mode), unless a folder or file was given.
    if not args.structured and not any(not a.startswith("-") for a in fuzzer_args):
        corpus = work / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for i, case in enumerate(target.seed_cases()):
            (corpus / f"seed-{i}").write_bytes(target.to_bytes(case))
        fuzzer_args.append(str(corpus))

    case_dir = hot / "case"

    def run_readers(case: dict) -> None:
        runner.write_case(case, case_dir)
        for reader in target.readers:
            exc = None
            try:
                reader.fn(case_dir)
            except Exception as e:  # noqa: BLE001 - classified
                exc = e
            kind = runner.classify(exc)
            if kind in runner.FAIL_KINDS:
                raise ContractBroken(f"{target.name}: reader {reader.name}: {kind}: "
                                     f"{type(exc).__name__}: {str(exc)[:500]}") from exc

    if args.structured:
        from hypothesis import HealthCheck, given, settings

        @settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
        @given(target.strategy())
        def structured(case):
            run_readers(case)

        test_one_input = structured.hypothesis.fuzz_one_input
    else:
        def test_one_input(data: bytes) -> None:
            run_readers(target.from_bytes(data))

    for case in target.seed_cases()[:8]:  # warm up (lazy imports, arenas) before measuring the baseline
        try:
            run_readers(case)
        except ContractBroken as exc:
            print(f"note: a seed already breaks the contract: {exc}", file=sys.stderr)
    vm, rss = _vm_and_rss()
    cap = args.cap_mib << 20
    resource.setrlimit(resource.RLIMIT_AS, (vm + cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    if not any(a.startswith("-rss_limit_mb") for a in fuzzer_args):
        fuzzer_args.append(f"-rss_limit_mb={(rss + cap) >> 20}")
    defaults = {"-timeout": "30", "-artifact_prefix": f"{work}/"}
    if args.structured:  # hypothesis needs some bytes to build a case from: no slow start from 1-byte inputs
        defaults.update({"-len_control": "0", "-max_len": "65536"})
    for flag, value in defaults.items():
        if not any(a.startswith(flag + "=") for a in fuzzer_args):
            fuzzer_args.append(f"{flag}={value}")
    print(f"atheris target {target.name} ({'structured' if args.structured else 'raw bytes'}): memory cap "
          f"{vm >> 20} MiB baseline VM + {args.cap_mib} MiB; libFuzzer args {fuzzer_args}", file=sys.stderr)
    atheris.Setup([sys.argv[0]] + fuzzer_args, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
