"""retain_freed_memory: an explicit, process-wide allocator setting — never applied on import."""
import subprocess
import sys


def test_not_applied_on_import_and_applied_on_request():
    script = (
        "import ctypes, glassnet, glassnet.nn, glassnet.models\n"
        "from glassnet.backend import retain_freed_memory\n"
        "import numpy as np\n"
        "ok = retain_freed_memory()\n"
        "a = np.ones(50_000_000, np.float32); del a\n"  # larger than glibc's mmap threshold
        "print(ok)\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() in ("True", "False")  # False only without glibc
    # importing glassnet alone changes nothing: the train command opts in explicitly
    src = open(glassnet_file("backend.py")).read()
    assert "retain_freed_memory()" not in src.split("def retain_freed_memory", 1)[0]


def glassnet_file(name):
    import glassnet
    from pathlib import Path

    return Path(glassnet.__file__).parent / name
