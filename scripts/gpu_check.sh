#!/usr/bin/env bash
# The GPU checks, as run on a machine with an NVIDIA GPU, CuPy and a CUDA
# build of PyTorch (CI has no GPU, so it never runs them):
#   1. the CuPy backend tests (tests/test_cupy_backend.py and the kernels' CuPy tests);
#   2. `glassnet train --device cuda` on Fashion-MNIST (small_cnn, 2 epochs);
#   3. benchmarks/bench_gpu.py (glassnet on CuPy vs PyTorch on CUDA).
# Logs go to $OUT (default gpu-check/). Set FMNIST_DIR to a folder with the
# Fashion-MNIST IDX files when they are not installed.
set -u
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if [ -n "${FMNIST_DIR:-}" ] && [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    mkdir -p /usr/share/datasets/fashion-mnist && cp "$FMNIST_DIR"/*.gz /usr/share/datasets/fashion-mnist/
fi
nvidia-smi -L | tee "$OUT/env.txt"
$PY -c "import sys, numpy, cupy, torch; print(sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/env.txt"
status=0
OPENBLAS_NUM_THREADS=2 timeout ${TEST_TIMEOUT:-200} $PY -m pytest -q -p no:cacheprovider -n ${WORKERS:-8} -rfEs \
    tests/test_cupy_backend.py tests/test_kernel_conv.py::test_cupy_matches_numpy \
    tests/test_kernel_pool.py::test_cupy_matches_numpy 2>&1 | tee "$OUT/tests.log" | tail -40
[ "${PIPESTATUS[0]}" = 0 ] || status=1
timeout ${TRAIN_TIMEOUT:-120} $PY glassnet_command.py train --model small_cnn --device cuda --epochs ${EPOCHS:-2} \
    --out /tmp/gpu-check-run --no-progress 2>&1 | tee "$OUT/train.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
timeout ${BENCH_TIMEOUT:-180} $PY benchmarks/bench_gpu.py ${BENCH_ARGS:-} --json "$OUT/bench_gpu.json" 2>&1 | tee "$OUT/bench_gpu.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
exit $status
