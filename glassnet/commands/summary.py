"""``glassnet summary``: the lecture's architecture table for a zoo model.

    glassnet summary vgg16 --input 3x224x224 --view lecture
    glassnet summary resnet18 --format md

An input the model does not take is a one-line error (exit status 1) naming the smallest it accepts
(``--input 3x100x100: alexnet_lecture does not run on 3x100x100 input: the smallest input it
accepts is 3x227x227``), not a traceback.
"""
from __future__ import annotations

from ..errors import ShapeError
from ._args import check_int, check_model_name, input_size_type


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print a model's layer table: shapes, memory, parameters, MACs, receptive fields")
    p.add_argument("model", help="zoo model name (see `glassnet models`)")
    p.add_argument("--input", default="3x224x224", type=input_size_type("3x224x224"), help="one image's shape, CxHxW (default 3x224x224)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--num-classes", type=int, default=None, help="output classes (default: the model's)")
    p.add_argument("--view", choices=["lecture", "leaves"], default="lecture",
                   help="lecture: activations folded into the layer before, input row first (default)")
    p.add_argument("--format", choices=["text", "md", "json"], default="text")
    p.set_defaults(handler=run)


def run(args) -> int:
    """``glassnet summary``: print the table; errors reach :func:`glassnet.cli.main` (one line)."""
    from ..analysis.input_fit import design_input, design_side, fits, smallest_side
    from ..analysis.summary import summary
    from ..models import get_model

    name = check_model_name(args.model, option=None)
    check_int("batch_size", args.batch_size, 1)
    check_int("num_classes", args.num_classes, 1, optional=True)
    size = args.input
    kwargs = {"in_channels": size[0]}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = get_model(name, **kwargs)
    ok, reason = fits(model, size)
    if not ok:
        text = "x".join(map(str, size))
        design = design_side(name, kwargs)
        small = smallest_side(model, size[0], design if isinstance(design, int) else max(design))
        accepts = (f"the smallest input it accepts is {size[0]}x{small}x{small}" if small is not None
                   else f"it does not run on its design input {design_input(name, kwargs, size[0])} either")
        raise ShapeError(f"--input {text}: {name} does not run on {text} input: {accepts} (it is built for "
                         f"{design_input(name, kwargs)}; {reason})")
    table = summary(model, size, batch_size=args.batch_size, view=args.view, name=args.model)
    if args.format == "json":
        print(table.to_json())
    elif args.format == "md":
        print(table.to_markdown(), end="")
    else:
        print(table)
    return 0
