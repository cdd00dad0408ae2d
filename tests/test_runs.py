"""A run's output folder: locks, refusals, atomic writes, safe checkpoints, what resume compares."""

import math
import re

import numpy as np
import pytest
import torch

from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.brain_tuning import runs
from bt_tutorial.brain_tuning.loop import brain_tune, train_model
from bt_tutorial.brain_tuning.runs import RunFolderError
from bt_tutorial.brain_tuning.samples import TuningData
from bt_tutorial.brain_tuning.settings import TuningConfig
from bt_tutorial.dataset.reader import LebelDataset

QUICK = TuningConfig(window_trs=1, batch_size=4, effective_batch=4, epochs=2, patience=5, lr_head=1e-2,
                     mixed_precision=False)


def data(shift=0.0, n_rows=8, seed=0):
    rng = np.random.default_rng(seed)
    windows = [rng.standard_normal((n_rows, 1600)).astype(np.float32) for _ in range(3)]
    targets = [(rng.standard_normal((n_rows, 2)) + shift).astype(np.float32) for _ in range(3)]
    return TuningData(windows[:2], targets[:2]), TuningData(windows[2:], targets[2:])


def run(out, config=QUICK, model="tiny-hubert", shift=0.0, **kwargs):
    train, val = data(shift)
    return train_model(load_speech_model(model), train, val, np.arange(2), out, config, device="cpu",
                       progress=False, **kwargs)


def test_checkpoints_load_without_running_code(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(RunFolderError, match="Cannot load .*evil.pt safely"):
        runs.load_checkpoint(tmp_path / "evil.pt", "cpu")
    assert not marker.exists()
    result = run(tmp_path / "ok", TuningConfig(**{**QUICK.__dict__, "epochs": 1}))
    saved = runs.load_checkpoint(tmp_path / "ok" / runs.CHECKPOINT, "cpu")  # weights_only=True
    assert saved["epoch"] == 1 and torch.equal(saved["voxels"], torch.arange(2))
    assert saved["run"]["model"] == "tiny-hubert" and result.completed


def test_a_second_run_into_a_locked_folder_fails_at_once(tmp_path):
    with runs.locked(tmp_path):
        with pytest.raises(RunFolderError, match=f"{tmp_path} is in use by another run"):
            run(tmp_path)
    assert not (tmp_path / runs.CHECKPOINT).exists()


def test_a_fresh_run_refuses_a_folder_with_a_run_unless_resume_or_overwrite(tmp_path):
    run(tmp_path)
    first = (tmp_path / "history.json").read_text()
    with pytest.raises(RunFolderError, match="holds a finished or partial run.*--resume.*--overwrite"):
        run(tmp_path)
    assert (tmp_path / "history.json").read_text() == first  # nothing lost
    assert run(tmp_path, resume=True).completed
    again = run(tmp_path, overwrite=True, shift=3.0)
    assert again.completed and (tmp_path / "history.json").read_text() != first
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        run(tmp_path / "file")


def test_a_failed_backbone_write_keeps_the_previous_epoch(tmp_path, monkeypatch):
    from bt_tutorial.alignment import models

    real, calls, epoch_one = models.SpeechModel.save_pretrained, [], {}

    def save_then_fail(self, path):
        calls.append(path)
        if len(calls) == 1:
            out = real(self, path)
            epoch_one["weights"] = {k: v.clone() for k, v in self.backbone.state_dict().items()}
            return out
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text("{half")
        raise OSError("disk full")

    monkeypatch.setattr(models.SpeechModel, "save_pretrained", save_then_fail)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path, shift=3.0)  # the targets' offset is learnt: epoch 2 is better and is written
    monkeypatch.undo()
    assert len(calls) == 2 and not list(tmp_path.glob("*.tmp")), list(tmp_path.glob("*.tmp"))
    kept = load_speech_model(str(tmp_path / "backbone")).backbone.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in epoch_one["weights"].items())  # epoch 1's backbone
    assert runs.load_checkpoint(tmp_path / runs.CHECKPOINT, "cpu")["epoch"] == 1
    assert run(tmp_path, shift=3.0, resume=True).completed  # and the run goes on from there


def test_a_backbone_caught_between_two_renames_is_put_back(tmp_path):
    run(tmp_path, TuningConfig(**{**QUICK.__dict__, "epochs": 1}))
    (tmp_path / "backbone").rename(tmp_path / "backbone.old.tmp")
    (tmp_path / "backbone.new.tmp").mkdir()
    (tmp_path / "history.json.3.tmp").write_text("x")
    (tmp_path / "my_notes.tmp").write_text("the user's")  # catches a sweep that deletes any *.tmp
    (tmp_path / "my_scratch.tmp").mkdir()
    runs.sweep_temporary(tmp_path)
    assert (tmp_path / "backbone" / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.glob("*.tmp")) == ["my_notes.tmp", "my_scratch.tmp"]


def test_write_atomic_removes_its_temporary_file_on_failure(tmp_path):
    def half(tmp):
        tmp.write_text("half")
        raise OSError("kill")

    (tmp_path / "history.json").write_text("[1]")
    with pytest.raises(OSError):
        runs.write_atomic(tmp_path / "history.json", half)
    assert (tmp_path / "history.json").read_text() == "[1]" and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("change,expected", [
    (dict(model="tiny-wav2vec2"), "model: checkpoint 'tiny-hubert', now 'tiny-wav2vec2'"),
    (dict(subject="UTS02"), "subject: checkpoint 'UTS01', now 'UTS02'"),
    (dict(shift=1.0), "data: checkpoint"),
])
def test_resume_compares_model_subject_and_data(tmp_path, change, expected):
    run(tmp_path, TuningConfig(**{**QUICK.__dict__, "epochs": 1}), subject="UTS01")
    kwargs = {"subject": "UTS01", **change}
    with pytest.raises(RunFolderError, match=expected):
        run(tmp_path, resume=True, **kwargs)


def test_resume_with_overwrite_keeps_a_matching_run_and_replaces_a_stale_one(tmp_path):
    one_epoch = TuningConfig(**{**QUICK.__dict__, "epochs": 1})
    run(tmp_path, one_epoch)
    first = (tmp_path / "history.json").read_text()
    assert run(tmp_path, one_epoch, resume=True, overwrite=True).completed
    assert (tmp_path / "history.json").read_text() == first  # resumed (finished), not retrained
    with pytest.warns(RuntimeWarning, match="(?s)stale run.*Cannot resume.*data: checkpoint.*training starts\\sagain") as caught:
        again = run(tmp_path, one_epoch, shift=3.0, resume=True, overwrite=True)
    (stale,) = [w for w in caught if "stale run" in str(w.message)]
    message = " ".join(str(stale.message).split())
    assert f"Cannot resume from {tmp_path / runs.CHECKPOINT}:" in message  # the file, without the advice:
    assert "Use another" not in message and "It is not" not in message  # the warning gives its own
    assert stale.filename == __file__
    assert again.completed and (tmp_path / "history.json").read_text() != first
    torch.save({"model": np.zeros(2)}, tmp_path / runs.CHECKPOINT)  # an older version's pickle
    with pytest.raises(RunFolderError, match="Cannot load"):
        run(tmp_path, one_epoch, resume=True)
    with pytest.warns(RuntimeWarning, match=r"(?s)Cannot load\s.*checkpoint.pt\ssafely"):
        assert run(tmp_path, one_epoch, resume=True, overwrite=True).completed
    assert runs.load_checkpoint(tmp_path / runs.CHECKPOINT, "cpu")["epoch"] == 1


def test_resume_notices_other_weights_under_the_same_name(tmp_path):
    run(tmp_path, TuningConfig(**{**QUICK.__dict__, "epochs": 1}))
    train, val = data()
    other = load_speech_model("tiny-hubert")
    with torch.no_grad():
        next(other.backbone.parameters()).add_(1.0)
    with pytest.raises(RunFolderError, match="fingerprint: checkpoint"):
        train_model(other, train, val, np.arange(2), tmp_path, QUICK, resume=True, device="cpu", progress=False)


def test_a_non_finite_loss_stops_with_the_epoch_and_step(tmp_path):
    train, val = data()
    train.targets[1][3, 0] = np.inf
    with pytest.raises(FloatingPointError, match=r"loss is (inf|nan) at epoch 1, step \d"):
        train_model(load_speech_model("tiny-hubert"), train, val, np.arange(2), tmp_path, QUICK,
                    device="cpu", progress=False)


@pytest.mark.parametrize("field,value", [("epochs", 0), ("row_step", 0), ("window_trs", 0), ("chunk_trs", 0),
                                         ("lr_backbone", math.nan), ("lr_head", -1.0), ("lr_head", math.inf),
                                         ("warmup_fraction", 1.0), ("effective_batch", 12), ("batch_size", 2.5),
                                         ("checkpoint_every_steps", -1), ("seed", -1), ("seed", 1.5)])
def test_settings_are_checked_up_front(field, value):
    with pytest.raises(ValueError, match=field):
        TuningConfig(**{"batch_size": 8, field: value})


def test_a_bad_device_fails_before_any_data_loads(tmp_path):
    class Untouchable(LebelDataset):
        def __init__(self):
            pass

        def split(self, subject):
            raise AssertionError("data were loaded")

    with pytest.raises(ValueError, match="Unknown device 'gpu0'"):
        brain_tune(load_speech_model("tiny-hubert"), Untouchable(), "UTS01", tmp_path, QUICK, device="gpu0")
    import torch

    if not torch.cuda.is_available():  # on a machine without a GPU: a clear error, not torch's RuntimeError
        with pytest.raises(ValueError, match="'cuda' asked for, but this machine has no usable CUDA GPU"):
            brain_tune(load_speech_model("tiny-hubert"), Untouchable(), "UTS01", tmp_path, QUICK, device="cuda")


def test_the_command_line_exits_2_with_one_line(tiny_twin, tmp_path, capsys, monkeypatch):
    from bt_tutorial.brain_tuning.cli import main

    args = ["--model", "tiny-hubert", "--subject", "UTS01", "--data", str(tiny_twin), "--device", "cpu",
            "--epochs", "1"]
    monkeypatch.delenv("BT_TRAIN_STORIES", raising=False)
    assert main(args + ["--out", str(tmp_path / "a")]) == 2  # --data is read as the full profile reads it
    out, err = capsys.readouterr()
    assert "None of the paper's 24 training stories" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("BT_TRAIN_STORIES", "all")  # the twin's own stories
    assert main(args + ["--out", str(tmp_path / "a"), "--lr-head", "nan"]) == 2
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == ["error: lr_head must be a finite number > 0, got nan."]
    assert "tuned backbone in" not in out and not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("x")
    assert main(args + ["--out", str(tmp_path / "file")]) == 2
    out, err = capsys.readouterr()
    assert "is a file" in err and len(err.strip().splitlines()) == 1 and "tuned backbone in" not in out


def test_ctrl_c_in_the_command_line_prints_how_to_resume(tmp_path, capsys, monkeypatch):
    """Catches an 87-line traceback on Ctrl-C instead of one line and exit code 130."""
    from bt_tutorial.brain_tuning import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "tune_from_args", interrupted)
    argv = ["--model", "tiny-hubert", "--subject", "UTS01", "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"interrupted: continue from the last checkpoint saved in {tmp_path / 'run'} with "
                   f"`python -m bt_tutorial.brain_tuning {' '.join(argv)} --resume`"]


def test_checkpoints_of_the_wrong_shape_or_with_nan_weights_are_named(tmp_path):
    """Catches a KeyError, a size-mismatch traceback or a learning-rate hint for a damaged checkpoint."""
    torch.save({"epoch": 1}, tmp_path / "bare.pt")
    with pytest.raises(RunFolderError, match=r"bare.pt is not a bt_tutorial checkpoint: it lacks \['config'"):
        runs.load_checkpoint(tmp_path / "bare.pt", "cpu")
    one_epoch = TuningConfig(**{**QUICK.__dict__, "epochs": 1})
    run(tmp_path / "ok", one_epoch)
    path = tmp_path / "ok" / runs.CHECKPOINT
    saved = torch.load(path, weights_only=True)
    name = next(k for k in saved["model"] if k.startswith("head.") and k.endswith("weight"))
    good = saved["model"][name].clone()
    saved["model"][name] = torch.full_like(good, float("nan"))
    torch.save(saved, path)
    with pytest.raises(RunFolderError, match=rf"checkpoint.pt holds non-finite weights \(\['{name}'\]\)"):
        runs.load_checkpoint(path, "cpu")
    saved["model"][name] = torch.zeros(good.shape[0] + 3, *good.shape[1:])
    torch.save(saved, path)
    with pytest.raises(RunFolderError, match="checkpoint.pt does not fit this model .*--overwrite"):
        run(tmp_path / "ok", one_epoch, resume=True)


def _two_checkpoints(out):
    """A one-epoch run of 4 steps with a checkpoint at step 2: checkpoint.pt (end of epoch 1) and the previous."""
    run(out, TuningConfig(**{**QUICK.__dict__, "epochs": 1, "checkpoint_every_steps": 2}))
    return out / runs.CHECKPOINT, out / runs.PREVIOUS


def _damage(path, how):
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:500])
        return
    saved = torch.load(path, weights_only=True)
    if how == "wrong keys":
        del saved["optimizer"]
    else:
        name = next(k for k in saved["model"] if k.endswith("weight"))
        saved["model"][name] = torch.full_like(saved["model"][name], float("nan"))
    torch.save(saved, path)


@pytest.mark.parametrize("how,reason", [("truncated", r"safely \(RuntimeError"),
                                        ("wrong keys", r"lacks \['optimizer'\]"),
                                        ("NaN weights", "non-finite weights")])
def test_a_damaged_latest_checkpoint_is_named_and_the_previous_one_loads(tmp_path, how, reason):
    """Catches a resume that dies on a damaged checkpoint.pt while checkpoint.previous.pt is good, or is silent."""
    latest, previous = _two_checkpoints(tmp_path)
    assert runs.load_latest(tmp_path, "cpu")[1:] == (latest, False)
    _damage(latest, how)
    with pytest.warns(RuntimeWarning, match="latest checkpoint is damaged") as caught:
        saved, path, fell_back = runs.load_latest(tmp_path, "cpu")
    message = str(caught[0].message)
    assert re.search(rf"{latest}.*{reason}.*; resuming from the previous checkpoint {previous} \(epoch 1, "
                     r"step 2\)", " ".join(message.split()))
    assert all(len(line) <= 80 or " " not in line for line in message.splitlines()), message
    assert (path, fell_back, saved["epoch"], saved["progress"]["step"]) == (previous, True, 0, 2)
    _damage(previous, "truncated")
    with pytest.raises(RunFolderError,
                       match=f"Both checkpoints in {tmp_path} are damaged: .*{reason}.*; Cannot load .*previous.pt"):
        runs.load_latest(tmp_path, "cpu")


def test_a_resume_from_the_previous_checkpoint_never_moves_the_damaged_one_over_it(tmp_path):
    """Catches the epoch's checkpoint write keeping the damaged checkpoint.pt as the previous one, which
    leaves no good checkpoint behind (the resumed epoch has no step checkpoint before its end)."""
    latest, previous = _two_checkpoints(tmp_path)
    _damage(latest, "truncated")
    with pytest.warns(RuntimeWarning, match="latest checkpoint is damaged"):
        result = run(tmp_path, TuningConfig(**{**QUICK.__dict__, "epochs": 1, "checkpoint_every_steps": 2}),
                     resume=True)
    assert result.completed
    assert runs.load_checkpoint(latest, "cpu")["epoch"] == 1
    kept = runs.load_checkpoint(previous, "cpu")  # the good step-2 checkpoint, not the damaged file
    assert (kept["epoch"], kept["progress"]["step"]) == (0, 2)


def test_a_run_writes_the_best_head_and_a_readable_history(tmp_path):
    """Catches head.pt misnamed or written empty."""
    result = run(tmp_path, TuningConfig(**{**QUICK.__dict__, "epochs": 1}))
    head = torch.load(tmp_path / "head.pt", weights_only=True)
    saved = runs.load_checkpoint(tmp_path / runs.CHECKPOINT, "cpu")
    assert set(head) == {"weight", "bias"} and head["weight"].shape == (2, 32)
    for name in ("weight", "bias"):
        assert torch.equal(head[name], saved["model"][f"head.{name}"])  # one epoch: the best is the last
    assert result.best_epoch == 1


def test_a_checkpoint_only_in_the_previous_file_is_resumed(tmp_path):
    """Catches a kill between save_checkpoint's two renames (no checkpoint.pt) read as a folder without a run."""
    latest, previous = _two_checkpoints(tmp_path)
    latest.unlink()
    saved, path, fell_back = runs.load_latest(tmp_path, "cpu")
    assert (path, fell_back, saved["progress"]["step"]) == (previous, False, 2)
    result = run(tmp_path, TuningConfig(**{**QUICK.__dict__, "epochs": 1, "checkpoint_every_steps": 2}), resume=True)
    assert result.completed and len(result.history) == 1 and runs.load_checkpoint(latest, "cpu")["epoch"] == 1


def test_a_full_disk_during_the_checkpoint_write_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    """Catches a bare 'No space left on device', a half-written temporary file, or a lost previous checkpoint."""
    import errno

    real, checkpoints = torch.save, []

    def full(obj, f, *args, **kwargs):
        if str(f).startswith(str(tmp_path / runs.CHECKPOINT)):
            checkpoints.append(f)
        if len(checkpoints) == 2 and checkpoints[-1] == f:  # epoch 2's checkpoint
            with open(f, "wb") as handle:
                handle.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match=rf"Cannot write {tmp_path / runs.CHECKPOINT}: the disk is full. It needs "
                                      r"about [\d.]+ MB \([\d,]+ MB free now\); the previous file is kept") as err:
        run(tmp_path)
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC and not list(tmp_path.glob("*.tmp"))
    assert runs.load_checkpoint(tmp_path / runs.CHECKPOINT, "cpu")["epoch"] == 1  # epoch 1's, untouched
    assert not (tmp_path / runs.PREVIOUS).exists()  # nothing was rotated before the new file was whole
    assert run(tmp_path, resume=True).completed


def test_a_negative_seed_is_refused_with_the_flag(tmp_path, capsys):
    """Catches numpy's 'expected non-negative integer' from deep in a run instead of naming --seed."""
    from bt_tutorial.brain_tuning.cli import main

    with pytest.raises(ValueError, match=r"seed must be a non-negative integer \(--seed\), got -1"):
        TuningConfig(seed=-1)
    argv = ["--model", "tiny-hubert", "--subject", "UTS01", "--out", str(tmp_path / "run"), "--seed", "-1"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: seed must be a non-negative integer (--seed), got -1."]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dtype, scaled", [(torch.bfloat16, False), (torch.float16, True)])
def test_mixed_precision_on_a_gpu_autocasts_to_its_type_and_scales_fp16_only(monkeypatch, dtype, scaled):
    """Catches the GPU branch never taken ('CUDA'), autocast to the wrong device or type, or a scaler with bf16.
    Run on the CPU: the GPU's type is planted and torch only builds the contexts."""
    import warnings

    from bt_tutorial.brain_tuning import loop

    monkeypatch.setattr(loop, "reduced_precision", lambda device: dtype)
    assert loop._precision(torch.device("cpu")) == (loop.nullcontext, None)
    assert loop._precision(torch.device("cuda"), enabled=False) == (loop.nullcontext, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: CUDA is not available here, autocast disabled
        autocast, scaler = loop._precision(torch.device("cuda"))
        context = autocast()
    assert (context.device, context.fast_dtype) == ("cuda", dtype)
    assert (scaler is not None) == scaled


def test_resume_refuses_other_target_voxels_and_says_so():
    from bt_tutorial.brain_tuning import loop

    config = TuningConfig(**QUICK.__dict__)
    saved = {"config": loop.asdict(config), "run": {"model": "m"}, "voxels": torch.arange(3)}
    loop._check_resume(saved, config, {"model": "m"}, np.arange(3), "ckpt.pt")  # the same: no error
    with pytest.raises(RunFolderError, match=r"Cannot resume from ckpt.pt: target voxels differ\. Use another"):
        loop._check_resume(saved, config, {"model": "m"}, np.arange(1, 4), "ckpt.pt")


def test_a_damaged_latest_checkpoint_is_reported_once_when_resuming_with_overwrite(tmp_path):
    """Catches the stale-run check reporting the damaged checkpoint too: the same warning twice."""
    latest, previous = _two_checkpoints(tmp_path)
    _damage(latest, "truncated")
    with pytest.warns(RuntimeWarning) as caught:
        result = run(tmp_path, TuningConfig(**{**QUICK.__dict__, "epochs": 1, "checkpoint_every_steps": 2}),
                     resume=True, overwrite=True)
    assert result.completed
    assert sum("latest checkpoint is damaged" in str(w.message) for w in caught) == 1
