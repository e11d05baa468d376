#!/usr/bin/env bash
# The README's end-to-end session, as one script: train the small CNN with
# augmentation and the plateau schedule, kill it mid-run, resume it, plot it,
# predict on an image, export it to ONNX, and evaluate an ensemble of 3 runs.
#
#   ./scripts/setup.sh && .venv/bin/pip install -e '.[plot,image,onnx]'
#   ./examples/end_to_end.sh [EPOCHS]        # default 6 epochs; writes runs/e2e-*
set -euo pipefail
cd "$(dirname "$0")/.."
GN=.venv/bin/glassnet
PY=.venv/bin/python
EPOCHS=${1:-6}
rm -rf runs/e2e-cnn runs/e2e-seed1 runs/e2e-seed2 runs/e2e-seed3 runs/e2e.onnx runs/e2e-test0.png

echo "== 1. train small_cnn with --augment and the plateau schedule; kill it with SIGKILL mid-run"
$GN train --model small_cnn --epochs "$EPOCHS" --augment --scheduler plateau --lr 0.05 \
    --checkpoint-every 100 --out runs/e2e-cnn --no-progress &
PID=$!
# wait until the first mid-epoch checkpoint of epoch 2 exists, then kill -9
until [ -f runs/e2e-cnn/checkpoints/last.json ] && \
      $PY -c "import json,sys; m=json.load(open('runs/e2e-cnn/checkpoints/last.json')); sys.exit(0 if m.get('epoch',0)>=1 and m.get('step',0)>0 else 1)" 2>/dev/null; do
    sleep 2
done
kill -9 "$PID" || true
wait "$PID" 2>/dev/null || true
echo "killed at: $($PY -c "import json; m=json.load(open('runs/e2e-cnn/checkpoints/last.json')); print('epoch', m['epoch'], 'step', m['step'])")"

echo "== 2. resume it"
$GN train --resume runs/e2e-cnn --no-progress

echo "== 3. plot it"
$GN plot runs/e2e-cnn

echo "== 4. predict on an image (test image 0 saved as a PNG)"
$PY - <<'EOF'
from PIL import Image
from glassnet.data import FashionMNIST
test = FashionMNIST(train=False)
Image.fromarray(test.data[0]).save("runs/e2e-test0.png")
print("runs/e2e-test0.png is a", test.classes[int(test.targets[0])])
EOF
$GN predict runs/e2e-cnn runs/e2e-test0.png --top-k 3

echo "== 5. export to ONNX"
$GN export runs/e2e-cnn --onnx runs/e2e.onnx --no-progress

echo "== 6. an ensemble of 3 runs (3 seeds, 2 epochs each)"
for s in 1 2 3; do
    $GN train --model small_cnn --epochs 2 --seed "$s" --out "runs/e2e-seed$s" --no-progress | tail -1
done
$GN evaluate --ensemble runs/e2e-seed1 runs/e2e-seed2 runs/e2e-seed3 --no-progress
