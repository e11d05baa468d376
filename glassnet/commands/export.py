"""``glassnet export``: write a trained run's model (or a fresh zoo model) as ONNX.

    glassnet export runs/mlp --onnx mlp.onnx
    glassnet export --model small_cnn --onnx small_cnn.onnx --input 1x28x28

A run folder holds ``config.json`` (``model``, ``model_kwargs``,
``num_classes``, ``in_channels``, ``image_size``) and its weights in
``checkpoints/best.safetensors`` (else ``checkpoints/last.safetensors``, else
``model.npz`` for older runs). Needs ``pip install glassnet[onnx]``.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ._args import check_int, check_model_name, input_size_type


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run's model (or a fresh zoo model) to ONNX")
    p.add_argument("run", nargs="?", default=None,
                   help="run folder (config.json + checkpoints/best|last.safetensors or model.npz)")
    p.add_argument("--model", default=None, help="export a freshly initialised zoo model instead of a run")
    p.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write")
    p.add_argument("--input", default=None, type=input_size_type("1x28x28"),
                   help="one input's shape, CxHxW (default: the run's in_channels x image_size, else 1x28x28)")
    p.add_argument("--num-classes", type=int, default=None, help="with --model: output classes")
    p.add_argument("--batch-size", type=int, default=1, help="probe batch size (the fixed one with --static-batch)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--static-batch", action="store_true", help="fix the batch axis instead of making it dynamic")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def load_run(folder):
    """``(model, input_size, weights_path)`` for a run folder; the model carries the run's
    weights (best, else last, else model.npz — :func:`glassnet.io.run_dir.load_run`)."""
    from ..io.run_dir import image_size
    from ..io.run_dir import load_run as load_run_dir

    model, config = load_run_dir(folder, which="best", log=None)
    size = (int(config.get("in_channels") or 1),) + tuple(image_size(config))
    return model, size, Path(config["weights_file"])


def run(args) -> int:
    """``glassnet export``: write the ONNX file; errors reach :func:`glassnet.cli.main` (one line)."""
    from ..io.onnx import export_onnx
    from ..models import get_model

    if (args.run is None) == (args.model is None):
        raise UsageError("give either a run folder or --model NAME (not both)")
    check_int("batch_size", args.batch_size, 1)
    check_int("opset", args.opset, 1)
    if args.run is not None:
        if args.num_classes is not None:
            raise UsageError("--num-classes is for --model; a run folder's model keeps its classes")
        model, size, source = load_run(args.run)
        name = f"{args.run} ({source.name})"
    else:
        check_model_name(args.model)
        check_int("num_classes", args.num_classes, 1, optional=True)
        size = args.input or (1, 28, 28)
        kwargs = {"in_channels": size[0]}
        if args.num_classes is not None:
            kwargs["num_classes"] = args.num_classes
        model = get_model(args.model, **kwargs)
        name = f"{args.model} (fresh weights)"
    if args.input is not None:
        size = args.input
    result = export_onnx(model, args.onnx, input_size=size, batch_size=args.batch_size, opset=args.opset,
                         dynamic_batch=not args.static_batch, progress=not args.no_progress)
    print(f"glassnet export: {name} -> {result.path}")
    print(f"  input {result.input_shape}, output {result.output_shape}, "
          f"{result.num_nodes} nodes, {result.num_parameters:,} weights, "
          f"{result.file_size:,} bytes ({result.file_size / 2**20:.1f} MiB), opset {result.opset}")
    return 0
