"""The fuzz harness itself: every way a reader can break the contract is seen and reported
with its input (the "_canary" target of tests/fuzz/targets.py misbehaves on purpose)."""
import base64
from pathlib import Path

from tests.fuzz.runner import read_case, run_campaign


def test_in_process_outcomes_are_classified(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_FUZZ_CANARY", "load,error,other,memory,memory-wrapped,timeout,violation")
    res = run_campaign("_canary", 40, work=tmp_path / "c", seed=0, soft_timeout=1.0, hard_timeout=20)  # 1 s: the first case imports glassnet, slow on a loaded machine
    c = res.counts["canary"]
    assert c["load"] and c["error"] and c["other"] and c["timeout"] and c["violation"], c
    assert c["memory"] >= 2 and c["crash"] == 0, c  # MemoryError raised, and hidden under a glassnet error
    kinds = {f["kind"] for f in res.failures}
    assert kinds == {"other", "memory", "timeout", "violation"}, res.describe_failures()
    assert res.memory["cap"] > 0 and res.memory["rlimit_as"] == res.memory["baseline_vm"] + res.memory["cap"]
    expected = {"other": {2}, "memory": {3, 4}, "timeout": {5}, "violation": {6}}  # CanaryTarget.KINDS
    for f in res.failures:  # each failure kept its input
        assert read_case(Path(f["path"]))["in"][0] in expected[f["kind"]], f


def test_a_segfault_is_a_crash_with_its_input(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_FUZZ_CANARY", "segfault")
    res = run_campaign("_canary", 1, work=tmp_path / "s", soft_timeout=5, hard_timeout=20, max_children=1)
    (f,) = res.failures
    assert f["kind"] == "crash" and "SIGSEGV" in f["exception"], f
    assert "in (base64): Bw==" in res.describe_failures()  # the input byte 7
    assert base64.b64decode("Bw==") == bytes([7])


def test_a_hang_in_c_code_is_killed_by_the_watchdog(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_FUZZ_CANARY", "c-hang")
    res = run_campaign("_canary", 1, work=tmp_path / "h", soft_timeout=0.5, hard_timeout=2, max_children=1)
    (f,) = res.failures
    assert f["kind"] == "crash" and f["exception"].startswith("hang"), f
    assert "time.sleep" in f["traceback"] or "read_canary" in f["traceback"], f["traceback"][-500:]
