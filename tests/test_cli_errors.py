"""The `glassnet` command never shows a traceback for bad input and never silently does the wrong thing.

Every case checks the exit status (2 for a wrong option, 1 for other bad input), that stderr is
exactly one line starting with ``glassnet <cmd>: error:`` naming the option or file, and that no
"Traceback" reaches stderr. Most cases call ``glassnet.cli.main`` in-process; a few run the real
command in a subprocess to prove nothing else is printed. Training runs are tiny (256 images, 1 epoch).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import fold_message, main
from glassnet.errors import DataFormatError, GlassnetError, UsageError
from glassnet.io import load_run, save_state_dict_file
from glassnet.io.run_dir import clear_run_dir, is_run_dir, read_config, read_history
from glassnet.models import get_model
from tests.data_required import require_fashion_mnist

REPO = Path(__file__).resolve().parents[1]
DATA = ["--limit-train", "256", "--limit-test", "64", "--epochs", "1", "--val-size", "0", "--batch-size", "64",
        "--no-progress"]
TINY = ["--model", "mlp", "--model-arg", "hidden=[16]", *DATA]


# ------------------------------------------------------------------ helpers
def run_main(capsys, argv):
    """``(status, stdout, stderr)`` of ``glassnet.cli.main(argv)`` (argparse's SystemExit included)."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_error_line(err, command, *fragments):
    """``err`` is one line ``glassnet <command>: error: ...`` holding every fragment, and no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith(f"glassnet {command}: error: "), err
    for fragment in fragments:
        assert str(fragment) in lines[0], (fragment, err)


def assert_cli_error(capsys, argv, status, *fragments):
    code, _, err = run_main(capsys, argv)
    assert code == status, (code, err)
    assert_error_line(err, argv[0], *fragments)
    return err


def run_cli(*argv, env=None, timeout=120):
    """The real command in a fresh interpreter: ``python -m glassnet.cli ARGV``."""
    full_env = {k: v for k, v in os.environ.items() if k != "GLASSNET_TRACEBACK"}
    full_env.update(PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "glassnet.cli", *map(str, argv)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def write_run(run_dir, nan_tensor=None, config=None):
    """A run folder with a tiny MLP (hidden 8): config.json, history.json, checkpoints/best.safetensors;
    ``nan_tensor`` names a weight set to NaN in the file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = config or {"model": "mlp", "model_kwargs": {"hidden": [8]}, "num_classes": 10, "in_channels": 1,
                        "dataset": "fashion-mnist"}
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "history.json").write_text(json.dumps([{"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5}]))
    gn.manual_seed(0)
    state = {k: np.asarray(v).copy() for k, v in get_model("mlp", hidden=[8]).state_dict().items()}
    if nan_tensor is not None:
        state[nan_tensor].flat[0] = np.nan
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    save_state_dict_file({"model." + k: v for k, v in state.items()}, run_dir / "checkpoints" / "best.safetensors")
    return run_dir


def use_run_commands(run_dir, tmp_path):
    """The four run-folder commands' argv for ``run_dir`` (predict gets an existing file as its image)."""
    image = tmp_path / "image.png"
    image.write_bytes(b"\x89PNG not really")
    return {"evaluate": ["evaluate", str(run_dir), "--no-progress"],
            "predict": ["predict", str(run_dir), str(image)],
            "plot": ["plot", str(run_dir), "--no-progress"],
            "export": ["export", str(run_dir), "--onnx", str(tmp_path / "out.onnx"), "--no-progress"]}


# ------------------------------------------------ train's option checks
BAD_TRAIN_OPTIONS = [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--lr", "0"], "--lr must be a finite number > 0"),
    (["--lr", "-0.1"], "--lr must be a finite number > 0"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--momentum", "1"], "--momentum must be a finite number in [0, 1)"),
    (["--momentum", "-0.5"], "--momentum must be a finite number in [0, 1)"),
    (["--weight-decay=-1e-4"], "--weight-decay must be a finite number >= 0"),
    (["--weight-decay", "inf"], "--weight-decay must be a finite number >= 0"),
    (["--gamma", "0"], "--gamma must be a finite number in (0, 1]"),
    (["--gamma", "1.5"], "--gamma must be a finite number in (0, 1]"),
    (["--step-size", "0"], "--step-size must be >= 1"),
    (["--patience", "-1"], "--patience must be >= 0"),
    (["--val-size", "-1"], "--val-size must be >= 0"),
    (["--limit-train", "0"], "--limit-train must be >= 1"),
    (["--limit-test", "0"], "--limit-test must be >= 1"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0"),
    (["--seed", "-3"], "--seed must be >= 0"),
    (["--model", "no_such_net"], "--model no_such_net: unknown model"),
    (["--model-arg", "dropout"], "--model-arg 'dropout': expected KEY=VALUE"),
    (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
    (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["--resume", "x", "--overwrite"], "--overwrite cannot be combined with --resume"),
]


@pytest.mark.parametrize("extra, message", BAD_TRAIN_OPTIONS, ids=[" ".join(e) for e, _ in BAD_TRAIN_OPTIONS])
def test_train_rejects_bad_option_values(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    assert_cli_error(capsys, ["train", *TINY, "--out", str(out), *extra], 2, message)
    assert not out.exists()  # refused before anything was written


def test_train_unknown_model_lists_the_known_ones(capsys):
    err = assert_cli_error(capsys, ["train", "--model", "resnet9000"], 2, "resnet9000")
    assert "known: " in err and "mlp" in err and "small_cnn" in err


def test_train_bad_option_in_a_subprocess_prints_one_line(tmp_path):
    result = run_cli("train", *TINY, "--lr", "nan", "--out", tmp_path / "run")
    assert result.returncode == 2
    assert_error_line(result.stderr, "train", "--lr", "nan")
    assert result.stdout == ""


def test_train_model_that_needs_224px_input_on_28px_data(tmp_path):
    require_fashion_mnist()
    result = run_cli("train", *DATA, "--model", "alexnet", "--out", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    assert_error_line(result.stderr, "train", "--model alexnet", "3x224x224", "1x28x28", "fashion-mnist")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model_arg, status, fragments", [
    ("image_size=32", 2, ["--model mlp", "1x32x32", "1x28x28"]),
    ("no_such_kwarg=1", 2, ["--model-arg no_such_kwarg", "has no argument", "hidden"]),
    ("num_classes=3", 2, ["--model-arg num_classes", "set from the dataset"]),
    ("activation='no_such_activation'", 2, ["--model-arg", "cannot build mlp", "no_such_activation"]),
])
def test_train_bad_model_args(tmp_path, capsys, model_arg, status, fragments):
    require_fashion_mnist()
    assert_cli_error(capsys, ["train", *TINY, "--model-arg", model_arg, "--out", str(tmp_path / "run")],
                     status, *fragments)
    assert not (tmp_path / "run").exists()


def test_train_val_size_must_leave_training_images(tmp_path, capsys):
    require_fashion_mnist()
    argv = ["train", *TINY, "--val-size", "256", "--out", str(tmp_path / "run")]
    assert_cli_error(capsys, argv, 2, "--val-size must be smaller than the training set", "256",
                     "--limit-train 256")


# -------------------------------------------------------------- --data-root
def test_missing_data_root_is_an_error_naming_the_folder(tmp_path, capsys):
    missing = tmp_path / "no_data_here"
    assert_cli_error(capsys, ["train", *TINY, "--data-root", str(missing), "--out", str(tmp_path / "run")], 1,
                     "--data-root", str(missing), "does not exist")
    (tmp_path / "empty").mkdir()
    assert_cli_error(capsys, ["train", *TINY, "--data-root", str(tmp_path / "empty"), "--out",
                              str(tmp_path / "run")], 1, str(tmp_path / "empty"), "train-images-idx3-ubyte")
    assert not (tmp_path / "run").exists()


def test_explicit_data_root_that_holds_the_files_is_used(tmp_path, capsys):
    root = require_fashion_mnist()
    code, _, err = run_main(capsys, ["train", *TINY, "--data-root", str(root), "--out", str(tmp_path / "run")])
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data_root"] == str(root)


def test_evaluate_bad_options(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    assert_cli_error(capsys, ["evaluate", str(run), "--data-root", str(tmp_path / "nope")], 1,
                     "--data-root", "nope")
    assert_cli_error(capsys, ["evaluate", str(run), "--json", str(tmp_path / "x.json")], 2, "--json", "--ensemble")
    assert_cli_error(capsys, ["evaluate", str(run), "--batch-size", "0"], 2, "--batch-size must be >= 1")
    assert_cli_error(capsys, ["evaluate", str(run), "--limit", "0"], 2, "--limit must be >= 1")


# ------------------------------------------------------------- --out reuse
def test_out_reuse_needs_resume_or_overwrite(tmp_path, capsys):
    require_fashion_mnist()
    out = tmp_path / "run"
    out.mkdir()  # an empty folder is fine
    code, _, err = run_main(capsys, ["train", *TINY, "--out", str(out)])
    assert code == 0, err
    first = json.loads((out / "test.json").read_text())
    (out / "notes.txt").write_text("mine")
    (out / "checkpoints" / "stale.safetensors").write_bytes(b"old")

    err = assert_cli_error(capsys, ["train", *TINY, "--out", str(out)], 2, str(out), "existing run folder",
                           f"--resume {out}", "--overwrite")
    assert (out / "checkpoints" / "stale.safetensors").exists()  # nothing touched

    code, stdout, err = run_main(capsys, ["train", *TINY, "--seed", "1", "--out", str(out), "--overwrite"])
    assert code == 0, err
    assert "--overwrite: removed" in stdout
    assert not (out / "checkpoints" / "stale.safetensors").exists()
    assert (out / "notes.txt").read_text() == "mine"  # not glassnet's: kept
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert len(json.loads((out / "history.json").read_text())) == 1
    assert json.loads((out / "test.json").read_text()) != first


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"meow")
    assert_cli_error(capsys, ["train", *TINY, "--out", str(folder)], 2, str(folder), "not a glassnet run folder",
                     "cat.jpg")
    assert_cli_error(capsys, ["train", *TINY, "--out", str(folder), "--overwrite"], 2, str(folder),
                     "--overwrite only replaces a glassnet run folder", "nothing was removed")
    assert (folder / "cat.jpg").read_bytes() == b"meow"
    file = tmp_path / "a_file"
    file.write_text("x")
    assert_cli_error(capsys, ["train", *TINY, "--out", str(file)], 2, str(file), "not a folder")


def test_clear_run_dir_removes_only_glassnet_files(tmp_path):
    run = write_run(tmp_path / "run")
    (run / "plots").mkdir()
    (run / "plots" / "curves.png").write_bytes(b"png")
    (run / "history.csv").write_text("epoch\n1\n")
    (run / "mine.txt").write_text("keep")
    assert is_run_dir(run) and not is_run_dir(tmp_path)
    clear_run_dir(run)
    assert sorted(p.name for p in run.iterdir()) == ["mine.txt"]
    with pytest.raises(GlassnetError, match="not a glassnet run folder"):
        clear_run_dir(tmp_path)


def test_resume_of_missing_folder(tmp_path, capsys):
    assert_cli_error(capsys, ["train", "--resume", str(tmp_path / "nope")], 2, "--resume", "nope")
    (tmp_path / "empty").mkdir()
    assert_cli_error(capsys, ["train", "--resume", str(tmp_path / "empty")], 2, "--resume", "config.json")


@pytest.mark.parametrize("saved, fragments", [
    ({"epochs": "ten"}, ['"epochs" must be an integer', "config.json"]),
    ({"lr": -1.0}, ['"lr" must be a finite number > 0', "config.json"]),
    ({"model": "gone_net"}, ['"model": unknown model', "config.json"]),
])
def test_resume_of_a_run_with_bad_saved_options(tmp_path, capsys, saved, fragments):
    run = write_run(tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **saved}))
    assert_cli_error(capsys, ["train", "--resume", str(run)], 1, *fragments)


# ------------------------------------------- the run-folder commands' inputs
@pytest.mark.parametrize("command", ["evaluate", "predict", "plot", "export"])
def test_missing_run_folder(tmp_path, capsys, command):
    argv = use_run_commands(tmp_path / "missing_run", tmp_path)[command]
    assert_cli_error(capsys, argv, 1, "missing_run", "does not exist")


CORRUPT_CONFIGS = [
    ("{not json", ["config.json", "not valid JSON"]),
    ('["mlp"]', ["config.json", "JSON object"]),
    ('{"model": 7}', ["config.json", '"model" must be a string']),
    ('{"model": "mlp", "num_classes": "ten"}', ["config.json", '"num_classes" must be an integer']),
    ('{"model": "mlp", "model_kwargs": [1, 2]}', ["config.json", '"model_kwargs" must be an object']),
    ('{"model": "mlp", "x": ' + "[" * 500 + "]" * 500 + "}", ["config.json", "nested more than"]),
]


@pytest.mark.parametrize("command", ["evaluate", "predict", "plot", "export"])
@pytest.mark.parametrize("text, fragments", CORRUPT_CONFIGS, ids=[f"config{i}" for i in range(len(CORRUPT_CONFIGS))])
def test_corrupt_config(tmp_path, capsys, command, text, fragments):
    run = write_run(tmp_path / "run")
    (run / "config.json").write_text(text)
    assert_cli_error(capsys, use_run_commands(run, tmp_path)[command], 1, *fragments)


@pytest.mark.parametrize("command", ["evaluate", "predict", "plot", "export"])
def test_nan_weights_are_refused(tmp_path, capsys, command):
    run = write_run(tmp_path / "run", nan_tensor="1.weight")
    assert_cli_error(capsys, use_run_commands(run, tmp_path)[command], 1, "best.safetensors", "'1.weight'",
                     "non-finite")


def test_nan_weights_in_a_subprocess_and_the_python_opt_out(tmp_path):
    run = write_run(tmp_path / "run", nan_tensor="1.bias")
    result = run_cli("evaluate", run, "--no-progress")
    assert result.returncode == 1
    assert_error_line(result.stderr, "evaluate", "best.safetensors", "'1.bias'", "NaN")
    with pytest.raises(DataFormatError, match="1.bias"):
        load_run(run, log=None)
    model, _ = load_run(run, log=None, allow_nonfinite=True)
    assert np.isnan(np.asarray(model.state_dict()["1.bias"])).any()


def test_missing_run_folder_in_a_subprocess(tmp_path):
    result = run_cli("plot", tmp_path / "gone")
    assert result.returncode == 1
    assert_error_line(result.stderr, "plot", "gone", "does not exist")


@pytest.mark.parametrize("text, fragment", [
    ('{"epoch": 1}', "JSON list"),
    ("[1, 2]", "entry 0 must be an object"),
    ('[{"epoch": "one"}]', '"epoch" must be a positive integer'),
    ('[{"epoch": 1, "train_loss": "low"}]', '"train_loss" must be a number'),
    ("[" * 300 + "]" * 300, "nested more than"),
])
def test_read_history_is_strict(tmp_path, capsys, text, fragment):
    run = write_run(tmp_path / "run")
    (run / "history.json").write_text(text)
    with pytest.raises(DataFormatError, match="history.json"):
        read_history(run)
    assert_cli_error(capsys, ["plot", str(run), "--no-progress"], 1, "history.json", fragment)


def test_read_config_accepts_what_train_writes(tmp_path):
    run = write_run(tmp_path / "run")
    assert read_config(run)["model"] == "mlp"


# --------------------------------------------------------------- summary
@pytest.mark.parametrize("extra, status, fragments", [
    (["--input", "28x28"], 2, ["argument --input", "3x224x224", "'28x28'"]),
    (["--input", "0x28x28"], 2, ["argument --input", "'0x28x28'"]),
    (["--batch-size", "0"], 2, ["--batch-size must be >= 1"]),
    (["--input", "1x8x8"], 1, ["Linear(3136, 128)", "in_features"]),
])
def test_summary_bad_input(capsys, extra, status, fragments):
    assert_cli_error(capsys, ["summary", "small_cnn", *extra], status, *fragments)


def test_summary_unknown_model_in_a_subprocess():
    result = run_cli("summary", "no_such_model")
    assert result.returncode == 2
    assert_error_line(result.stderr, "summary", "unknown model 'no_such_model'", "vgg16")


def test_export_needs_run_or_model(tmp_path, capsys):
    assert_cli_error(capsys, ["export", "--onnx", str(tmp_path / "x.onnx")], 2, "either a run folder or --model")


# ----------------------------------------------- the error line machinery
def _with_handler(monkeypatch, exc):
    import glassnet.commands.models as models_command

    def handler(args):
        raise exc
    monkeypatch.setattr(models_command, "run", handler)


def test_oserror_names_the_file(monkeypatch, capsys):
    _with_handler(monkeypatch, PermissionError(13, "Permission denied", "/runs/x/test.json"))
    assert_cli_error(capsys, ["models"], 1, "/runs/x/test.json: Permission denied")


def test_real_oserror_from_out_under_a_file(tmp_path, capsys):
    require_fashion_mnist()
    (tmp_path / "file").write_text("x")
    assert_cli_error(capsys, ["train", *TINY, "--out", str(tmp_path / "file" / "run")], 1,
                     str(tmp_path / "file" / "run"))


def test_multi_line_message_is_folded(monkeypatch, capsys):
    _with_handler(monkeypatch, UsageError("cannot find it. Looked in:\n  1. /a  (missing)\n  2. /b\n\nTo fix:\n  * x"))
    assert_cli_error(capsys, ["models"], 2, "cannot find it. Looked in: 1. /a  (missing); 2. /b; To fix: * x")
    long = fold_message("y" * 5000)
    assert len(long) < 2100 and "3000 more characters" in long


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    _with_handler(monkeypatch, KeyboardInterrupt())
    code, _, err = run_main(capsys, ["models"])
    assert code == 130 and err == "glassnet models: interrupted\n"


def test_a_bug_still_shows_its_traceback(monkeypatch):
    _with_handler(monkeypatch, ZeroDivisionError("a real bug"))
    with pytest.raises(ZeroDivisionError):
        main(["models"])


def test_glassnet_traceback_env_shows_tracebacks(monkeypatch, capsys):
    _with_handler(monkeypatch, DataFormatError("broken file\nsecond line"))
    monkeypatch.setenv("GLASSNET_TRACEBACK", "1")
    code, _, err = run_main(capsys, ["models"])
    assert code == 1
    assert "Traceback" in err and "second line" in err
    assert err.strip().splitlines()[-1] == "glassnet models: error: broken file; second line"


def test_old_style_system_exit_message_becomes_an_error_line(monkeypatch, capsys):
    _with_handler(monkeypatch, SystemExit("glassnet models: something went wrong"))
    assert_cli_error(capsys, ["models"], 1, "something went wrong")


def test_stdout_closed_early_exits_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "glassnet.cli", "models"],
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # like `glassnet models | head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""
