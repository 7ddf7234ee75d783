"""``h2f verify`` (script and entry mode, child processes, exit codes, --json) and ``h2f convert-params``.

Programs live in tests/verify_data: ``<case>/haiku.py`` with its ``linen.py``/``nnx.py`` migrations, and
``entry/``: a Haiku model library (``haiku_lib.py``), its Linen and NNX migrations, and a Haiku training
script that saves a checkpoint and its eval predictions.
"""

from __future__ import annotations

import json
import pickle
import runpy
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from h2f.cli import cli

jax = pytest.importorskip("jax")
pytest.importorskip("haiku")
pytest.importorskip("flax")
import numpy as np  # noqa: E402

DATA = Path(__file__).parent / "verify_data"
ENTRY = DATA / "entry"


def _h2f(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _verify_entry_json(migrated: Path):
    """``h2f verify --json`` of the entry-mode Haiku library against ``migrated``, in evaluation mode."""
    return _h2f(
        "verify", "--json", ENTRY / "haiku_lib.py", migrated, "--entry", "Model(16, 4)",
        "--input", "f32[8,12]", "--input", "training=False",
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# script mode


def test_script_mode_passes_in_child_processes_with_a_table():
    result = _h2f("verify", DATA / "autoencoder" / "haiku.py", DATA / "autoencoder" / "linen.py")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "(backend: cpu" in lines[0] or "(backend: gpu" in lines[0] or "(backend: tpu" in lines[0]
    assert [line.split()[:3] for line in lines if line.strip().startswith("call ")] == [
        ["call", "0", "encode"],
        ["call", "1", "decode"],
    ]
    assert all(line.split()[-1] == "pass" for line in lines if line.strip().startswith("call "))
    assert lines[-1] == "VERIFIED"


def test_script_mode_mismatch_names_the_module_in_json(tmp_path):
    wrong = tmp_path / "wrong.py"
    source = (DATA / "mlp_dropout" / "nnx.py").read_text()
    wrong.write_text(source.replace("x = jax.nn.relu(x)", "x = jax.nn.tanh(x)"))
    result = _h2f("verify", "--json", DATA / "mlp_dropout" / "haiku.py", wrong)
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["verdict"] == "not_verified"
    assert [c["result"] for c in report["checks"]] == ["skipped-stochastic", "fail"]
    assert report["checks"][1]["first_differing_module"]["haiku"] == "model/block"
    assert report["checks"][1]["first_differing_module"]["flax"] == "block"
    assert report["checks"][1]["max_abs_diff"] > report["atol"]


def test_crash_and_hang_are_reported_with_exit_2(tmp_path):
    crash = tmp_path / "crash.py"
    crash.write_text("import os\nos.abort()\n")
    hang = tmp_path / "hang.py"
    hang.write_text("import time\ntime.sleep(600)\n")
    result = _h2f("verify", crash, DATA / "autoencoder" / "linen.py")
    assert result.exit_code == 2, result.output
    assert "original program" in result.output and "killed by signal" in result.output
    assert result.output.splitlines()[-1] == "COULD NOT RUN"
    result = _h2f("verify", "--timeout", "20", hang, DATA / "autoencoder" / "linen.py")
    assert result.exit_code == 2, result.output
    assert f"original program {hang} could not run: timed out after 20 s" in result.output


def test_a_migrated_program_that_is_still_haiku_is_not_a_mismatch(tmp_path):
    """A file h2f left in place (the NNX target's H2F100) verified against its original: nothing was compared,
    which is exit 2 and says so, not exit 1 as if the migration computed something else."""
    same = tmp_path / "still_haiku.py"
    same.write_text((DATA / "autoencoder" / "haiku.py").read_text())
    result = _h2f("verify", DATA / "autoencoder" / "haiku.py", same)
    assert result.exit_code == 2, result.output
    assert f"migrated program {same} makes no Flax call and still uses Haiku: nothing was migrated" in result.output
    assert result.output.splitlines()[-1] == "COULD NOT RUN"


def test_a_migrated_program_that_crashes_is_not_said_to_be_unmigrated(tmp_path):
    """A migrated file that still names haiku and raises before its first Flax call: the exception is the problem
    reported, not "nothing was migrated" (it was, and then it crashed)."""
    crashing = tmp_path / "crashes.py"
    crashing.write_text("import haiku as hk\n\nraise RuntimeError('the layer h2f left in place')\n")
    result = _h2f("verify", DATA / "autoencoder" / "haiku.py", crashing)
    assert result.exit_code == 2, result.output
    assert "the layer h2f left in place" in result.output
    assert "nothing was migrated" not in result.output


def test_verify_help_says_it_executes_programs_in_child_processes():
    result = _h2f("verify", "--help")
    assert result.exit_code == 0
    assert "EXECUTES the given programs, each in its own child process" in result.output


# ----------------------------------------------------------------------------------------------
# entry mode


def test_entry_mode_checks_every_aspect_and_explains_batchnorm_debiasing():
    result = _verify_entry_json(ENTRY / "linen_lib.py")
    assert result.exit_code == 0, result.output
    checks = {c["compared"]: c for c in json.loads(result.output)["checks"]}
    assert checks["parameter trees correspond"]["result"] == "pass"
    assert checks["output (eval mode)"]["result"] == "pass"
    assert checks["output (training mode)"]["result"] == "skipped"  # dropout: masks cannot be matched
    assert checks["state after a training call"]["result"] == "pass"
    assert checks["gradients of mean(output**2)"]["result"] == "pass"
    after = checks["eval output after 3 training steps"]
    assert after["result"] == "expected-difference"
    assert after["messages"][0].startswith("H2F050: Haiku's BatchNorm moving averages are zero-debiased")


SAMPLING = Path(__file__).parent.parent / "fixtures" / "rng" / "sampling"


@pytest.mark.parametrize(("sample", "code"), [("False", 0), ("True", 1)])
def test_entry_mode_runs_a_model_drawing_sample_keys_and_says_when_nothing_compares(sample, code):
    """A model that draws from the "sample" stream gets a key in entry mode (it could not run without one); when
    every output then depends on the rng, nothing is compared and the report says so instead of VERIFIED."""
    result = _h2f(
        "verify", "--json", SAMPLING / "before.py", SAMPLING / "linen.py",
        "--entry", "VAE(latent_size=2, hidden_size=8, output_size=6)", "--input", "f32[3,6]", "--input", f"sample={sample}",
    )  # fmt: skip
    assert result.exit_code == code, result.output
    report = json.loads(result.output)
    checks = {c["compared"]: c["result"] for c in report["checks"]}
    if sample == "False":
        assert checks["output"] == checks["gradients of mean(output**2)"] == "pass"
        assert report["problems"] == []
    else:
        assert checks["output"] == checks["gradients of mean(output**2)"] == "skipped"
        assert report["problems"][0].startswith("nothing was compared: every output depends on the rng")


def test_entry_mode_nnx_wrong_momentum_fails_naming_the_module(tmp_path):
    wrong = tmp_path / "nnx_wrong.py"
    wrong.write_text((ENTRY / "nnx_lib.py").read_text().replace("momentum=0.9", "momentum=0.99"))
    result = _h2f(
        "verify",
        ENTRY / "haiku_lib.py",
        wrong,
        "--entry",
        "Model(16, 4)",
        "--flax-entry",
        "Model(12, 16, 4)",
        "--input",
        "f32[8,12]",
        "--input",
        "training=False",
    )
    assert result.exit_code == 1, result.output
    assert (
        "first module whose updated state differs: haiku: model/block/batch_norm  \N{LEFT RIGHT ARROW}  "
        "flax: block/batch_norm"
    ) in result.output
    assert "output (eval mode)" in result.output


def test_entry_mode_lists_missing_parameters(tmp_path):
    wrong = tmp_path / "linen_wrong.py"
    wrong.write_text(
        (ENTRY / "linen_lib.py")
        .read_text()
        .replace("        x = nn.BatchNorm(momentum=0.9, epsilon=1e-5)(x, use_running_average=not training)\n", "")
    )
    result = _verify_entry_json(wrong)
    assert result.exit_code == 1, result.output
    (check,) = json.loads(result.output)["checks"]
    assert check["compared"] == "parameter trees correspond" and check["result"] == "fail"
    assert any(m.startswith("missing in flax: model/block/batch_norm/scale") for m in check["messages"])


def test_entry_mode_json_reports_a_migrated_program_that_cannot_run(tmp_path):
    wrong = tmp_path / "linen_broken.py"
    wrong.write_text((ENTRY / "linen_lib.py").read_text() + "\nraise RuntimeError('broken on import')\n")
    result = _verify_entry_json(wrong)
    assert result.exit_code == 2, result.output
    report = json.loads(result.output)
    assert report["verdict"] == "could_not_run" and report["checks"] == []
    assert "broken on import" in report["problems"][0]


@pytest.mark.parametrize(
    "spec,error",
    [
        (["--entry", "Model(16, __import__('os'))", "--input", "f32[8,12]"], "only Python literals are accepted"),
        (["--entry", "Model(16, 4)", "--input", "q7[8]"], "unknown dtype 'q7'"),
        (["--entry", "Model(16, 4)", "--input", "training"], "expected an array spec like f32[8,784]"),
        (["--input", "f32[8,12]"], "--input and --flax-entry need --entry"),
    ],
)
def test_entry_specs_are_parsed_never_evaluated(spec, error):
    result = CliRunner().invoke(cli, ["verify", str(ENTRY / "haiku_lib.py"), str(ENTRY / "linen_lib.py"), *spec])
    assert result.exit_code == 2
    assert error in result.output


# ----------------------------------------------------------------------------------------------
# convert-params: a trained Haiku checkpoint loads into the migrated model and predicts the same


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    old_argv = sys.argv
    sys.argv = ["haiku_train.py", str(out)]
    sys.path.insert(0, str(ENTRY))
    try:
        runpy.run_path(str(ENTRY / "haiku_train.py"), run_name="__main__")
    finally:
        sys.argv = old_argv
        sys.path.remove(str(ENTRY))
        sys.modules.pop("haiku_lib", None)
    return out


def _load_module(name: str, path: Path):
    return runpy.run_path(str(path), run_name=name)


@pytest.mark.parametrize("checkpoint", ["params.pkl", "params.npz"])
def test_converted_checkpoint_gives_the_same_predictions_linen(trained, tmp_path, checkpoint):
    out = tmp_path / "linen_variables.pkl"
    result = _h2f(
        "convert-params",
        trained / checkpoint,
        ENTRY / "linen_lib.py",
        "--entry",
        "Model(16, 4)",
        "--input",
        "f32[1,12]",
        "--input",
        "training=False",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    with open(out, "rb") as f:
        variables = pickle.load(f)
    assert sorted(variables) == ["batch_stats", "params"]
    model = _load_module("linen_lib", ENTRY / "linen_lib.py")["Model"](16, 4)
    predictions = model.apply(variables, np.load(trained / "test_inputs.npy"), training=False)
    np.testing.assert_allclose(predictions, np.load(trained / "predictions.npy"), atol=1e-5)


def test_converted_checkpoint_gives_the_same_predictions_nnx(trained, tmp_path):
    from flax import nnx

    out = tmp_path / "nnx_state.npz"
    result = _h2f(
        "convert-params",
        trained / "params.pkl",
        ENTRY / "nnx_lib.py",
        "--entry",
        "Model(12, 16, 4)",
        "--input",
        "f32[1,12]",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    model = _load_module("nnx_lib", ENTRY / "nnx_lib.py")["Model"](12, 16, 4, rngs=nnx.Rngs(0))
    model.eval()
    with np.load(out) as data:
        flat = {tuple(int(p) if p.isdigit() else p for p in k.split("/")): data[k] for k in data.files}
    state = nnx.state(model)
    pure = {}
    for path, value in flat.items():
        node = pure
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = value
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)
    predictions = model(np.load(trained / "test_inputs.npy"))
    np.testing.assert_allclose(predictions, np.load(trained / "predictions.npy"), atol=1e-5)


def test_convert_back_to_haiku_round_trips(trained, tmp_path):
    import haiku as hk

    linen = tmp_path / "linen.pkl"
    back = tmp_path / "haiku.pkl"
    common = ["--entry", "Model(16, 4)", "--input", "f32[1,12]", "--input", "training=True"]
    assert _h2f("convert-params", trained / "params.pkl", ENTRY / "linen_lib.py", *common, "-o", linen).exit_code == 0
    result = _h2f("convert-params", "--to-haiku", linen, ENTRY / "haiku_lib.py", *common, "-o", back)
    assert result.exit_code == 0, result.output
    with open(back, "rb") as f:
        converted = pickle.load(f)
    with open(trained / "params.pkl", "rb") as f:
        params, state = pickle.load(f)
    jax.tree_util.tree_map(np.testing.assert_array_equal, converted["params"], jax.device_get(params))
    Model = _load_module("haiku_lib", ENTRY / "haiku_lib.py")["Model"]
    t = hk.transform_with_state(lambda x, training: Model(16, 4)(x, training))
    predictions, _ = t.apply(
        converted["params"], converted["state"], jax.random.key(0), np.load(trained / "test_inputs.npy"), training=False
    )
    np.testing.assert_allclose(predictions, np.load(trained / "predictions.npy"), atol=1e-5)


def test_checkpoint_that_does_not_fit_is_refused_with_the_paths(trained, tmp_path):
    out = tmp_path / "out.pkl"
    result = CliRunner().invoke(
        cli,
        [
            "convert-params",
            str(trained / "params.pkl"),
            str(ENTRY / "linen_lib.py"),
            "--entry",
            "Model(8, 4)",
            "--input",
            "f32[1,12]",
            "--input",
            "training=False",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 1
    assert "does not fit the model" in result.output and "model/block/linear/w" in result.output
    assert not out.exists()


def test_orbax_checkpoint_directory(trained, tmp_path):
    pytest.importorskip("orbax.checkpoint")
    import orbax.checkpoint as ocp

    out = tmp_path / "linen_ckpt"
    result = _h2f(
        "convert-params",
        trained / "params.pkl",
        ENTRY / "linen_lib.py",
        "--entry",
        "Model(16, 4)",
        "--input",
        "f32[1,12]",
        "--input",
        "training=False",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    variables = ocp.StandardCheckpointer().restore(out.resolve())
    model = _load_module("linen_lib", ENTRY / "linen_lib.py")["Model"](16, 4)
    predictions = model.apply(variables, np.load(trained / "test_inputs.npy"), training=False)
    np.testing.assert_allclose(predictions, np.load(trained / "predictions.npy"), atol=1e-5)


def test_unknown_checkpoint_format_is_refused(trained, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "convert-params",
            str(trained / "params.pkl"),
            str(ENTRY / "linen_lib.py"),
            "--entry",
            "Model(16, 4)",
            "--input",
            "f32[1,12]",
            "-o",
            str(tmp_path / "x.txt"),
        ],
    )
    assert result.exit_code == 2
    assert "unsupported checkpoint format '.txt'; use .pkl/.pickle, .npz, or a directory (orbax)" in result.output


# ----------------------------------------------------------------------------------------------
# h2f migrate --verify


def _migrate_verify_into(output_dir, *paths):
    """``h2f migrate --verify -j 1 --output-dir output_dir paths...`` (in process)."""
    return CliRunner().invoke(
        cli, ["migrate", "--verify", "-j", "1", "--output-dir", str(output_dir), *map(str, paths)]
    )


def test_migrate_verify_checks_each_migrated_script(tmp_path):
    (tmp_path / "train.py").write_text((DATA / "autoencoder" / "haiku.py").read_text())
    (tmp_path / "layers.py").write_text("import haiku as hk\n\n\ndef make():\n    return hk.Linear(3)\n")
    result = _migrate_verify_into(tmp_path / "out", tmp_path / "train.py", tmp_path / "layers.py")
    assert result.exit_code == 0, result.output
    assert f"h2f verify {tmp_path / 'train.py'} (original) -> {tmp_path / 'out' / 'train.py'}" in result.output
    assert "layers.py (original)" not in result.output  # no apply calls: a library, not verified
    assert result.output.count("\nVERIFIED") == 1


def test_migrate_verify_into_output_dir_finds_unchanged_siblings(tmp_path):
    """--output-dir holds only the files that changed; the migrated script still imports its Haiku-free sibling."""
    (tmp_path / "train.py").write_text("from settings import SCALE\n" + (DATA / "autoencoder" / "haiku.py").read_text())
    (tmp_path / "settings.py").write_text("SCALE = 2.0\n")
    out = tmp_path / "out"
    result = _migrate_verify_into(out, tmp_path / "train.py", tmp_path / "settings.py")
    assert result.exit_code == 0, result.output
    assert not (out / "settings.py").exists()  # unchanged: not written
    assert f"h2f verify {tmp_path / 'train.py'} (original) -> {out / 'train.py'}" in result.output
    assert result.output.count("\nVERIFIED") == 1


def test_migrate_verify_needs_written_files(tmp_path):
    (tmp_path / "train.py").write_text((DATA / "autoencoder" / "haiku.py").read_text())
    result = CliRunner().invoke(cli, ["migrate", "--verify", "--diff", str(tmp_path / "train.py")])
    assert result.exit_code == 2
    assert "--verify runs the migrated files: it cannot be used with -, --diff or --check" in result.output


def test_entries_and_tolerance_come_from_pyproject(tmp_path):
    (tmp_path / ".git").mkdir()
    for name in ("haiku_lib.py", "linen_lib.py"):
        (tmp_path / name).write_text((ENTRY / name).read_text())
    (tmp_path / "pyproject.toml").write_text(
        '[tool.h2f.verify]\natol = 1e-9\n\n[[tool.h2f.verify.entries]]\nfile = "haiku_lib.py"\n'
        'entry = "Model(16, 4)"\ninputs = ["f32[8,12]", "training=False"]\n'
    )
    result = _h2f("verify", "--json", tmp_path / "haiku_lib.py", tmp_path / "linen_lib.py")
    report = json.loads(result.output)
    assert report["entry"] == "Model(16, 4)" and report["atol"] == 1e-9
    assert report["checks"][0] == {
        "compared": "parameter trees correspond",
        "max_abs_diff": None,
        "result": "pass",
        "messages": ["8 leaves paired one-to-one (names, shapes, dtypes)"],
    }
    # Outputs agree to float32 rounding, not to 1e-9: the configured tolerance is the one applied.
    assert result.exit_code == (0 if report["verdict"] == "verified" else 1)
    assert all(
        c["max_abs_diff"] is None or c["max_abs_diff"] <= 1e-9 or c["result"] != "pass" for c in report["checks"]
    )


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_a_fixture_of_each_target_verifies_through_the_command(target):
    case = Path(__file__).resolve().parent.parent / "fixtures" / "module_class" / "guide_mlp"
    result = _h2f("verify", "--json", case / "before.py", case / f"{target}.py")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verdict"] == "verified"
    assert any(c["result"] == "pass" for c in report["checks"])
