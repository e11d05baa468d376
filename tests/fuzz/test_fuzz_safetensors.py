"""Fuzz glassnet.io.load_state_dict_file on .safetensors files: any input bytes give a correct load or
a GlassnetError, within the memory cap and time limits (target "safetensors" in
tests/fuzz/targets.py; tests/fuzz/README.md has the big-campaign commands)."""
from tests.fuzz.runner import assert_clean


def test_fuzz_safetensors(tmp_path):
    assert_clean("safetensors", tmp_path)
