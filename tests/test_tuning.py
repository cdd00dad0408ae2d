"""Brain-tuning: windows, controls, the loop on a learnable target, resume, bad input."""

import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.brain_tuning.loop import brain_tune, train_model
from bt_tutorial.brain_tuning.samples import TuningData, control_targets, tr_windows
from bt_tutorial.brain_tuning.settings import TuningConfig
from bt_tutorial.dataset.reader import LebelDataset

FAST = TuningConfig(window_trs=1, batch_size=4, effective_batch=8, epochs=8, patience=10,
                    lr_backbone=1e-4, lr_head=5e-2, warmup_fraction=0.1)


def learnable(n_stories=4, rows=16, seed=0):
    """Windows of a low (300 Hz) or a high (2.5 kHz) tone in noise; targets say which.

    Each of the 3 voxels responds +w or -w to the tone, so no constant (no bias)
    predicts them: a model must read the audio to bring the loss below the
    targets' variance.
    """
    rng = np.random.default_rng(seed)
    n = 3520  # 0.22 s, a multiple of 20 ms
    t = np.arange(n) / 16000
    weights = np.array([1.5, -1.0, 0.8])
    windows, targets = [], []
    for _ in range(n_stories):
        tone = rng.choice([-1.0, 1.0], rows)
        phase = rng.uniform(0, 2 * np.pi, (rows, 1))
        wav = np.sin(2 * np.pi * np.where(tone > 0, 2500.0, 300.0)[:, None] * t + phase)
        windows.append((wav + 0.1 * rng.standard_normal((rows, n))).astype(np.float32))
        targets.append((tone[:, None] * weights + 0.1 * rng.standard_normal((rows, 3))).astype(np.float32))
    return TuningData(windows[:-1], targets[:-1]), TuningData(windows[-1:], targets[-1:])


def test_tr_windows_end_with_their_tr_and_pad_short_audio():
    wav = np.arange(16000 * 4, dtype=np.float32) + 1
    tr_times = np.array([0.0, 2.0045, 6.0])
    w = tr_windows(wav, tr_times, window_trs=2)
    assert w.shape[1] % 320 == 0 and w.shape[1] >= 2 * 2.0045 * 16000
    end = int(round((tr_times[1] + 2.0045 / 2) * 16000))
    assert w[1, -1] == wav[end - 1]
    onset = w.shape[1] - int(round(2.0045 / 2 * 16000))  # row 0's window ends half a TR after t = 0
    assert np.all(w[0, :onset] == 0)  # before the onset: zeros
    assert w[0, onset] == wav[0] and np.array_equal(w[0, onset:], wav[: w.shape[1] - onset])
    assert w[2, -1] == 0  # after the end of the audio: zeros


def test_controls_shuffle_targets_but_keep_shapes():
    rng = np.random.default_rng(0)
    targets = [np.arange(20.0).reshape(10, 2), np.arange(100, 112.0).reshape(6, 2)]
    other = control_targets(targets, "other_story", 3, rng)
    assert [t.shape for t in other] == [(10, 2), (6, 2)] and other[1][0, 0] == 0
    perm = control_targets(targets, "chunk_permute", 3, rng)
    assert sorted(perm[0][:, 0]) == sorted(targets[0][:, 0])
    assert not np.array_equal(perm[0], targets[0])
    with pytest.raises(ValueError, match="control must be"):
        TuningConfig(control="random")


@pytest.mark.parametrize("name", ["tiny-wav2vec2", "tiny-hubert", "tiny-whisper"])
def test_loss_falls_on_a_target_that_needs_the_audio(name, tmp_path):
    model = load_speech_model(name)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    train, val = learnable()
    result = train_model(model, train, val, np.arange(3), tmp_path, FAST, device="cpu", progress=False)
    losses = [h["val_loss"] for h in result.history]
    best_constant = float(np.mean(np.var(val.targets[0], axis=0)))  # about 1.3
    assert min(losses) < 0.35 * best_constant, losses
    assert result.history[0]["train_loss"] > min(losses)
    moved = max(float((v.float() - before[k].float()).abs().max()) for k, v in model.backbone.state_dict().items())
    assert moved > 1e-4, "the backbone got no gradient"
    again = load_speech_model(str(result.backbone_dir))
    assert again.family == model.family


def test_resume_after_a_disconnect_gives_the_same_weights(tmp_path):
    train, val = learnable()
    config = FAST
    full = load_speech_model("tiny-hubert")
    train_model(full, train, val, np.arange(3), tmp_path / "a", config, device="cpu", progress=False)
    cut = load_speech_model("tiny-hubert")
    steps_per_epoch = int(np.ceil(len(train) / config.effective_batch))
    partial = train_model(cut, train, val, np.arange(3), tmp_path / "b", config, device="cpu",
                          progress=False, stop_after_steps=steps_per_epoch + 1)
    assert not partial.completed and len(partial.history) == 1
    resumed_model = load_speech_model("tiny-hubert")
    resumed = train_model(resumed_model, train, val, np.arange(3), tmp_path / "b", config, resume=True,
                          device="cpu", progress=False)
    assert resumed.completed and len(resumed.history) == config.epochs
    for (name, a), b in zip(full.backbone.state_dict().items(), resumed_model.backbone.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_with_another_configuration_lists_the_differences(tmp_path):
    train, val = learnable()
    train_model(load_speech_model("tiny-hubert"), train, val, np.arange(3), tmp_path,
                TuningConfig(**{**FAST.__dict__, "epochs": 1}), device="cpu", progress=False)
    with pytest.raises(ValueError, match=f"Cannot resume from {tmp_path / 'checkpoint.pt'}: .*lr_head: checkpoint "
                                         "0.05, now 0.1"):
        train_model(load_speech_model("tiny-hubert"), train, val, np.arange(3), tmp_path,
                    TuningConfig(**{**FAST.__dict__, "epochs": 1, "lr_head": 0.1}), resume=True,
                    device="cpu", progress=False)


def test_brain_tune_on_the_tiny_twin_and_no_voxel_error(tiny_twin, tmp_path):
    ds = LebelDataset(tiny_twin)
    config = TuningConfig(**{**FAST.__dict__, "epochs": 1, "window_trs": 2})
    result = brain_tune(load_speech_model("tiny-whisper"), ds, "UTS01", tmp_path / "run", config,
                        device="cpu", progress=False)
    assert result.completed and (result.backbone_dir / "config.json").is_file()
    assert len(result.voxels) > 0
    with pytest.raises(ValueError, match="No voxel has a noise ceiling above 0.999"):
        brain_tune(load_speech_model("tiny-whisper"), ds, "UTS01", tmp_path / "x",
                   TuningConfig(ceiling_threshold=0.999), device="cpu", progress=False)


@pytest.mark.slow
def test_command_line_runs_and_resumes(tiny_twin, tmp_path):
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "bt_tutorial.brain_tuning", "--model", "tiny-hubert", "--subject", "UTS01",
           "--data", str(tiny_twin), "--out", str(tmp_path), "--epochs", "1", "--window-trs", "1",
           "--batch-size", "4", "--effective-batch", "8", "--device", "cpu"]
    env = {**os.environ, "BT_TRAIN_STORIES": "all"}  # the twin's own stories, not the paper's
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best epoch 1" in done.stdout and (tmp_path / "checkpoint.pt").is_file()
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0 and "epoch 1: train" in again.stdout
    bad = subprocess.run(cmd + ["--resume", "--lr-head", "0.5"], capture_output=True, text=True, timeout=300,
                         env=env)
    assert bad.returncode != 0 and "lr_head" in bad.stderr


def test_profile_settings_and_run_folders(tmp_path):
    from bt_tutorial.brain_tuning.settings import profile_tuning_config, tuned_model_dir

    assert profile_tuning_config("full") == TuningConfig()
    demo = profile_tuning_config("demo", epochs=1)
    assert demo.epochs == 1 and demo.window_trs < TuningConfig().window_trs
    assert (demo.lag_trs, demo.head_init) == (2, "ridge")  # the demo uses the improved recipe
    assert profile_tuning_config("demo", "paper").head_init == "random"
    improved = profile_tuning_config("full", "lag-ridge")
    assert improved == TuningConfig(lag_trs=2, head_init="ridge", epochs=10, patience=3, batch_order="shuffled",
                                    train_mode=True, warmup_epochs=None, head_decay=1.0, head_floor=1.0,
                                    chunk_trs=10, chunk_distance=0)
    with pytest.raises(ValueError, match="Unknown tuning preset"):
        profile_tuning_config("full", "best")
    a = tuned_model_dir(tmp_path, "openai/whisper-small", "UTS01")
    b = tuned_model_dir(tmp_path, "openai/whisper-small", "UTS01", "chunk_permute")
    assert a.parent == b.parent and a != b and "/" not in a.parent.name


def test_tuned_model_dir_names_the_brain_run_and_each_control():
    """Catches the brain-tuned run and a control sharing one folder, or the model's name lost from it."""
    from bt_tutorial.brain_tuning.settings import tuned_model_dir

    home = Path("/data")
    assert tuned_model_dir(home, "openai/whisper-small", "UTS02") == home / "tuned" / "openai--whisper-small_UTS02" / "brain"
    assert (tuned_model_dir(home, "whisper-tiny.en", "UTS01", "chunk_permute")
            == home / "tuned" / "whisper-tiny.en_UTS01" / "control-chunk_permute")


ACCEPTED_EDGES = [dict(lag_trs=0), dict(lag_trs=19), dict(head_decay=1.0, head_floor=0.0), dict(head_floor=1.0),
                  dict(batch_size=8, effective_batch=8), dict(warmup_fraction=0.0), dict(ceiling_threshold=0.0),
                  dict(chunk_distance=0, checkpoint_every_steps=0), dict(patience=None, warmup_epochs=None),
                  dict(epochs=1, row_step=1), dict(lr_backbone=1e-9, lr_head=1e-9), dict(seed=0)]
REFUSED_EDGES = [(dict(lag_trs=-1), "lag_trs"), (dict(lag_trs=20), "lag_trs"), (dict(head_decay=0.0), "head_decay"),
                 (dict(head_decay=1.5), "head_decay"), (dict(head_floor=-0.1), "head_floor"),
                 (dict(head_floor=1.5), "head_floor"), (dict(batch_size=8, effective_batch=4), "effective_batch"),
                 (dict(batch_size=8, effective_batch=12), "effective_batch"),
                 (dict(warmup_fraction=1.0), "warmup_fraction"), (dict(warmup_fraction=-0.1), "warmup_fraction"),
                 (dict(ceiling_threshold=1.0), "ceiling_threshold"), (dict(ceiling_threshold=-0.1), "ceiling_threshold"),
                 (dict(epochs=0), r"epochs must be an integer >= 1, got 0"),
                 (dict(epochs=True), "epochs must be an integer"), (dict(epochs=1.5), "epochs must be an integer"),
                 (dict(patience=0), r"patience must be an integer >= 1 or None"),
                 (dict(chunk_distance=-1), "chunk_distance"), (dict(chunk_distance=True), "chunk_distance"),
                 (dict(checkpoint_every_steps=-1), "checkpoint_every_steps"), (dict(lr_head=0.0), "lr_head"),
                 (dict(lr_backbone=float("inf")), "lr_backbone"), (dict(control="random"), "control"),
                 (dict(head_init="zeros"), "head_init"), (dict(select_by="val_mse"), "select_by"),
                 (dict(batch_order="sorted"), "batch_order"), (dict(train_mode=1), "train_mode"),
                 (dict(seed=-1), "seed")]


@pytest.mark.parametrize("edge", ACCEPTED_EDGES, ids=lambda e: ",".join(e))
def test_tuning_config_accepts_every_bound_it_documents(edge):
    """Catches a bound moved inward: a documented edge value refused."""
    config = TuningConfig(**edge)
    assert all(getattr(config, k) == v for k, v in edge.items())


@pytest.mark.parametrize("edge,named", REFUSED_EDGES, ids=lambda e: ",".join(e) if isinstance(e, dict) else "")
def test_tuning_config_refuses_each_value_past_a_bound_and_names_it(edge, named):
    """Catches a bound moved outward or a check dropped, and an error that does not name the setting."""
    with pytest.raises(ValueError, match=named):
        TuningConfig(**edge)


@pytest.mark.slow
def test_two_processes_under_accelerate_match_one_process(tiny_twin, tmp_path):
    """Two processes (gloo, CPU) split each step's samples; losses and weights match one process."""
    import os
    import subprocess
    import sys

    args = ["-m", "bt_tutorial.brain_tuning", "--model", "tiny-whisper", "--subject", "UTS01", "--data", str(tiny_twin),
            "--epochs", "2", "--window-trs", "1", "--batch-size", "2", "--effective-batch", "6",
            "--device", "cpu", "--no-mixed-precision"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BT_TRAIN_STORIES": "all"}
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], capture_output=True,
                         text=True, timeout=300, env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    # the launcher `accelerate launch --multi_gpu` runs on GPUs; on CPUs the same process group comes from torchrun
    import socket

    with socket.socket() as sock:  # torchrun hangs with port 0: pick a free one
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
              "--master_port", str(port)]
    two = subprocess.run([*launch, *args, "--out", str(tmp_path / "two")], capture_output=True, text=True,
                         timeout=240, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("best epoch") == 1  # only the main process reports
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for h1, h2 in zip(a["history"], b["history"]):  # Adam hides a gradient scale; the losses do not
        assert abs(h1["train_loss"] - h2["train_loss"]) < 1e-5 and abs(h1["val_loss"] - h2["val_loss"]) < 1e-5
        assert abs(h1["val_r"] - h2["val_r"]) < 1e-4
    start = load_speech_model("tiny-whisper").backbone.state_dict()
    moved = 0
    for name, w in a["model"].items():
        assert torch.allclose(w, b["model"][name], atol=2e-5), name
        key = name.removeprefix("backbone.")
        moved += key in start and not torch.equal(w, start[key])
    assert moved > 10  # the backbone was trained, not only compared at its start


def test_lagged_windows_end_lag_trs_earlier():
    wav = np.arange(16000 * 20, dtype=np.float32) + 1
    tr_times = np.array([8.0, 10.0045])
    plain = tr_windows(wav, tr_times, window_trs=2)
    lagged = tr_windows(wav, tr_times, window_trs=2, lag_trs=2)
    shift = int(round((tr_times[1] + 2.0045 / 2) * 16000)) - int(round((tr_times[1] + 2.0045 / 2 - 2 * 2.0045) * 16000))
    assert lagged.shape == plain.shape
    assert lagged[1, -1] == plain[1, -1] - shift
    with pytest.raises(ValueError, match="lag_trs"):
        TuningConfig(lag_trs=-1)


def test_ridge_head_recovers_a_planted_linear_map():
    from bt_tutorial.brain_tuning.model import fit_ridge_head, mean_correlation

    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((3, 6)), np.array([0.5, -1.0, 2.0])
    x = rng.standard_normal((300, 6)) + 4.0  # uncentred features: the bias must absorb the means
    y = x @ weight.T + bias + 0.01 * rng.standard_normal((300, 3))
    head = fit_ridge_head(x[:200], [y[:120], y[120:200]], x[200:], y[200:])
    assert np.allclose(head["weight"], weight, atol=0.02) and np.allclose(head["bias"], bias, atol=0.1)
    assert head["alpha"] <= 1 and head["val_r"] > 0.99 and head["val_loss"] < 1e-3
    noise = fit_ridge_head(x[:200], [rng.standard_normal((200, 3))], x[200:], rng.standard_normal((100, 3)))
    assert noise["alpha"] >= 100  # no signal: the validation story picks a strong penalty
    with pytest.raises(ValueError, match="rows"):
        fit_ridge_head(x[:200], [y[:150]], x[200:], y[200:])
    a, b = rng.standard_normal((50, 4)), rng.standard_normal((50, 4))
    assert np.isclose(mean_correlation(a, b), np.mean([np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(4)]))
    a[:, 3] = 1.0  # a constant prediction carries no correlation: it counts as 0
    assert np.isclose(mean_correlation(a, b), np.sum([np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(3)]) / 4)


def linear_target(n_stories=4, rows=24, seed=1):
    """Windows whose loudness sets the targets: a ridge head on pooled outputs can find them."""
    rng = np.random.default_rng(seed)
    n = 3520
    windows, targets = [], []
    for _ in range(n_stories):
        gain = rng.uniform(0.2, 3.0, rows)
        windows.append((gain[:, None] * rng.standard_normal((rows, n))).astype(np.float32))
        targets.append(np.stack([gain, -gain, 0.5 * gain], axis=1).astype(np.float32))
    return TuningData(windows[:-1], targets[:-1]), TuningData(windows[-1:], targets[-1:])


def test_ridge_head_starts_where_the_random_head_does_not(tmp_path):
    from bt_tutorial.brain_tuning.loop import evaluate

    train, val = linear_target()
    one_epoch = TuningConfig(**{**FAST.__dict__, "epochs": 1})
    runs = {}
    for init in ("random", "ridge"):
        config = TuningConfig(**{**one_epoch.__dict__, "head_init": init})
        runs[init] = train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path / init,
                                 config, device="cpu", progress=False)
    assert "alpha" in runs["ridge"].initial and "alpha" not in runs["random"].initial
    from bt_tutorial.brain_tuning.model import RIDGE_HEAD_ALPHAS

    assert runs["ridge"].initial["alpha"] in RIDGE_HEAD_ALPHAS
    assert runs["ridge"].initial["val_r"] > 0.5 > abs(runs["random"].initial["val_r"])
    assert runs["ridge"].initial["val_loss"] < runs["random"].initial["val_loss"]
    # evaluate's streaming correlation is the plain one
    from bt_tutorial.brain_tuning.model import BrainTunedModel, mean_correlation

    model = BrainTunedModel(load_speech_model("tiny-whisper"), 3).eval()
    x, y = val.batch(np.arange(len(val)))
    with torch.no_grad():
        pred = model(model.speech_model.prepare(x)).numpy()
    scores = evaluate(model, val, batch_size=5)
    assert np.isclose(scores["val_r"], mean_correlation(pred, y.numpy()), atol=1e-5)
    assert np.isclose(scores["val_loss"], np.mean((pred - y.numpy()) ** 2), rtol=1e-5)


def test_the_ridge_head_shows_its_two_bars_only_when_asked(capsys):
    """Catches init_ridge_head printing bars by default, or not passing progress to both pooled passes."""
    from bt_tutorial.brain_tuning.loop import init_ridge_head
    from bt_tutorial.brain_tuning.model import BrainTunedModel

    train, val = linear_target()
    model = BrainTunedModel(load_speech_model("tiny-whisper"), 3)
    init_ridge_head(model, train, val, batch_size=8)
    assert "pooled outputs" not in capsys.readouterr().err
    init_ridge_head(model, train, val, batch_size=8, progress=True)
    err = capsys.readouterr().err  # a bar opens once; it may redraw its end once or twice (timing)
    assert err.count("pooled outputs:   0%") == 2 and "9/9" in err and "3/3" in err  # batches of 8: 72 and 24 rows


def test_evaluate_keeps_its_sums_in_float64_for_responses_far_from_zero():
    """Catches float32 running sums: with a large offset, sum(p^2) - sum(p)^2 / n cancels to noise."""
    from bt_tutorial.brain_tuning.loop import evaluate
    from bt_tutorial.brain_tuning.model import BrainTunedModel, mean_correlation

    _, val = linear_target()
    model = BrainTunedModel(load_speech_model("tiny-whisper"), 3).eval()
    with torch.no_grad():
        model.head.bias += 3000.0
    far = TuningData(val.windows, [t + 3000.0 for t in val.targets])
    x, y = far.batch(np.arange(len(far)))
    with torch.no_grad():
        pred = model(model.speech_model.prepare(x)).double().numpy()
    scores = evaluate(model, far, batch_size=5)
    assert np.isclose(scores["val_r"], mean_correlation(pred, y.double().numpy()), atol=1e-4)


def test_evaluate_scores_small_responses_and_gives_a_constant_voxel_r_0():
    """Catches a floor on the variance product (small responses would be scaled wrong), or a division
    by a zero variance (a constant voxel's NaN would make the mean r NaN)."""
    from bt_tutorial.brain_tuning.loop import evaluate
    from bt_tutorial.brain_tuning.model import BrainTunedModel

    _, val = linear_target()
    model = BrainTunedModel(load_speech_model("tiny-whisper"), 3).eval()
    with torch.no_grad():
        model.head.weight *= 1e-3
    small = TuningData(val.windows, [np.column_stack([1e-3 * t[:, :2], np.zeros(len(t))]).astype(np.float32)
                                     for t in val.targets])
    x, y = small.batch(np.arange(len(small)))
    with torch.no_grad():
        pred = model(model.speech_model.prepare(x)).double().numpy()
    r = [np.corrcoef(pred[:, j], y.numpy()[:, j])[0, 1] for j in range(2)] + [0.0]  # the constant voxel: 0
    scores = evaluate(model, small, batch_size=5)
    assert np.isclose(scores["val_r"], np.mean(r), atol=1e-4)


def test_select_by_correlation_keeps_the_best_correlation_epoch(tmp_path):
    train, val = linear_target()
    config = TuningConfig(**{**FAST.__dict__, "epochs": 3, "select_by": "val_r", "head_init": "ridge"})
    result = train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path, config,
                         device="cpu", progress=False)
    r = [h["val_r"] for h in result.history]
    assert result.best_epoch == int(np.argmax(r)) + 1
    with pytest.raises(ValueError, match="select_by"):
        TuningConfig(select_by="loss")
    with pytest.raises(ValueError, match="head_init"):
        TuningConfig(head_init="zeros")


def test_command_line_presets_and_overrides():
    from bt_tutorial.brain_tuning.cli import parse_args, tuning_config

    base = ["--model", "m", "--subject", "UTS01", "--out", "o"]
    assert tuning_config(parse_args(base)) == TuningConfig()
    improved = tuning_config(parse_args(base + ["--preset", "lag-ridge", "--lag-trs", "3", "--control",
                                                "chunk_permute"]))
    assert (improved.lag_trs, improved.head_init, improved.control) == (3, "ridge", "chunk_permute")
    assert tuning_config(parse_args(base + ["--no-mixed-precision"])).mixed_precision is False
    paper_like = tuning_config(parse_args(base + ["--preset", "lag-ridge", "--patience", "none", "--warmup-epochs",
                                                  "5", "--no-train-mode", "--batch-order", "by_story"]))
    assert (paper_like.patience, paper_like.warmup_epochs, paper_like.train_mode) == (None, 5, False)
    assert tuning_config(parse_args(base + ["--warmup-epochs", "none"])).warmup_epochs is None
    assert tuning_config(parse_args(base + ["--checkpoint-every-steps", "0"])).checkpoint_every_steps == 0
    with pytest.raises(SystemExit):
        parse_args(base + ["--head-init", "zeros"])


def test_optimizer_steps_and_schedule():
    """Catches a schedule that is not the authors' (src/brain_trainer_story.py) or a wrong step count."""
    from bt_tutorial.brain_tuning.schedule import epoch_batches, lr_schedule, optimizer_steps

    shuffled = TuningConfig(batch_size=8, effective_batch=16, epochs=2, batch_order="shuffled",
                            warmup_epochs=None, head_decay=1.0, head_floor=1.0)
    assert optimizer_steps(666, shuffled) == 2 * 42
    assert optimizer_steps([300, 366], shuffled) == 2 * 42
    backbone, head = lr_schedule(10, replace(shuffled, epochs=10))
    assert [backbone(s) for s in (0, 9, 10, 55, 99)] == pytest.approx([0.1, 1.0, 1.0, 0.5, 1 / 90])
    assert head(0) == head(99) == 1.0

    authors = TuningConfig()  # 30 epochs, warm-up 5 epochs from 0, head x 0.8 per epoch down to 0.1
    assert optimizer_steps([300, 130], authors) == 30 * (3 + 2)  # batches of 128 within each story
    backbone, head = lr_schedule(7, authors)
    per_epoch = [(backbone(7 * e + 3), head(7 * e)) for e in range(30)]
    assert [b for b, _ in per_epoch[:7]] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0, 1 - 1 / 25])
    assert per_epoch[29][0] == pytest.approx(0.04)  # never 0: the last epoch is index 29
    assert [h for _, h in per_epoch[:3]] == pytest.approx([1, 0.8, 0.64])
    assert per_epoch[10][1] == pytest.approx(0.8 ** 10) and per_epoch[11][1] == per_epoch[29][1] == 0.1
    assert backbone(0) == backbone(6) == 0.0  # constant within an epoch

    batches = epoch_batches([300, 130], authors, epoch=0)  # consecutive rows of one story per step
    assert [(b[0], len(b)) for b in batches] == [(0, 128), (128, 128), (256, 44), (300, 128), (428, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(batches, epoch_batches([300, 130], authors, epoch=3)))
    mixed = epoch_batches([300, 130], shuffled, epoch=0)
    assert sorted(np.concatenate(mixed)) == list(range(430)) and not np.array_equal(mixed[0], np.arange(16))



def test_schedule_edges_three_stories_and_reproducible_shuffles():
    """Catches stories after the second left out of an epoch, shuffles that differ between two runs
    with the same seed, and off-by-ones at one step per epoch and at a one-step warm-up or decay."""
    from bt_tutorial.brain_tuning.schedule import epoch_batches, lr_schedule

    authors = TuningConfig()
    batches = epoch_batches([130, 5, 140], authors, epoch=0)
    assert [(b[0], len(b)) for b in batches] == [(0, 128), (128, 2), (130, 5), (135, 128), (263, 12)]
    shuffled = TuningConfig(batch_size=8, effective_batch=16, epochs=2, batch_order="shuffled", warmup_epochs=None,
                            head_decay=1.0, head_floor=1.0, seed=5)
    again = epoch_batches(100, shuffled, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(again, epoch_batches(100, shuffled, epoch=1)))
    assert not np.array_equal(np.concatenate(again), np.concatenate(epoch_batches(100, shuffled, epoch=0)))

    backbone, head = lr_schedule(1, replace(authors, epochs=6, warmup_epochs=5, head_decay=0.5, head_floor=0.01))
    assert [backbone(e) for e in range(6)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])  # one step an epoch
    assert head(1) == 0.5 and head(2) == 0.25
    backbone, _ = lr_schedule(3, replace(shuffled, warmup_fraction=0.1))  # 6 steps: a one-step warm-up
    assert [backbone(s) for s in range(6)] == pytest.approx([1.0, 5 / 5, 4 / 5, 3 / 5, 2 / 5, 1 / 5])
    backbone, _ = lr_schedule(1, replace(shuffled, warmup_fraction=0.5))  # 2 steps: one to warm, one to decay
    assert [backbone(s) for s in range(2)] == pytest.approx([1.0, 1.0])


class _StubTuningDataset:
    """Two training stories, a validation story and a test story with 10 repeats; voxels 0, 2 and 4
    repeat the same signal (ceiling near 1), 1 and 3 are noise (near 0), 5 is in between (about 0.7)."""

    tr = 2.0

    def __init__(self):
        rng = np.random.default_rng(0)
        self.asked = []
        self.rows = {"a": 40, "b": 36, "v": 30}
        self.responses = {s: rng.standard_normal((n, 6)) * np.arange(1, 7) + 5 for s, n in self.rows.items()}
        signal = rng.standard_normal((400, 6))
        noise = rng.standard_normal((10, 400, 6))
        self.repeats = np.where(np.arange(6) % 2 == 0, signal + 0.05 * noise, noise)
        self.repeats[..., 5] = signal[:, 5] + 3.0 * noise[..., 5]  # a ceiling of about 0.7
        self.audio = {s: np.sin(np.arange(int(16000 * (2 * n + 24))) * (k + 1) / 50).astype(np.float32)
                      for k, (s, n) in enumerate(self.rows.items())}

    def split(self, subject):
        self.asked.append(("split", subject))
        return {"train": ["a", "b"], "validation": "v", "test": "t"}

    def load_repeats(self, subject, story):
        self.asked.append(("repeats", subject, story))
        return self.repeats

    def load_responses(self, subject, story):
        self.asked.append(("responses", subject, story))
        return self.responses[story]

    def load_audio(self, story, sample_rate):
        from types import SimpleNamespace
        self.asked.append(("audio", story, sample_rate))
        return SimpleNamespace(waveform=self.audio[story])

    def tr_times(self, story):
        return 10.0 + 2.0 * np.arange(10, self.rows[story] + 10)


@pytest.mark.parametrize("control", [None, "chunk_permute"])
def test_prepare_tuning_data_builds_what_the_recipe_says(control):
    """Catches voxels chosen without the ceiling, windows built with the wrong times, size, lag or rate,
    targets not z-scored on the chosen voxels, the row step ignored, and the control's shuffles
    drawn from another seed, applied with other settings or skipped on the validation story."""
    from bt_tutorial.brain_tuning.samples import control_targets, prepare_tuning_data, tr_windows
    from bt_tutorial.dataset.timing import zscore

    data = _StubTuningDataset()
    config = replace(TuningConfig(), window_trs=3, lag_trs=1, row_step=2, control=control, chunk_trs=4,
                     chunk_distance=1, seed=7, ceiling_threshold=0.85)
    train, val, voxels = prepare_tuning_data(None, data, "UTS05", config)
    assert voxels.tolist() == [0, 2, 4]
    assert ("split", "UTS05") in data.asked and ("repeats", "UTS05", "t") in data.asked
    assert {a[2] for a in data.asked if a[0] == "audio"} == {16000}
    assert {(a[1], a[2]) for a in data.asked if a[0] == "responses"} == {("UTS05", "a"), ("UTS05", "b"), ("UTS05", "v")}
    windows = {s: tr_windows(data.audio[s], data.tr_times(s), 3, 2.0, lag_trs=1) for s in ("a", "b", "v")}
    targets = {s: zscore(data.responses[s][:, voxels]).astype(np.float32) for s in ("a", "b", "v")}
    want_train = [targets[s][::2] for s in ("a", "b")]
    rng = np.random.default_rng(7)
    want_train = control_targets(want_train, control, 4, rng, 1)
    want_val = [targets["v"]] if control is None else control_targets([targets["v"]], "chunk_permute", 4, rng, 1)
    for got, want in zip(train.windows, (windows["a"][::2], windows["b"][::2])):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(val.windows[0], windows["v"])
    for got, want in zip(train.targets + val.targets, want_train + want_val):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    if control is not None:
        assert not np.array_equal(val.targets[0], targets["v"])  # the control is selected on shuffled targets

def _noisy_tiny_model(family: str):
    """A tiny wav2vec2 / HuBERT with SpecAugment masking, LayerDrop and dropout all on (strongly)."""
    import transformers as tf

    from bt_tutorial.alignment.models import SpeechModel

    kwargs = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                  conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                  apply_spec_augment=True, mask_time_prob=0.5, mask_time_length=2, mask_time_min_masks=1,
                  layerdrop=0.5, hidden_dropout=0.5, attention_dropout=0.5, activation_dropout=0.5,
                  feat_proj_dropout=0.5)
    cls_config, cls_model = ((tf.Wav2Vec2Config, tf.Wav2Vec2Model) if family == "wav2vec2"
                             else (tf.HubertConfig, tf.HubertModel))
    torch.manual_seed(0)
    backbone = cls_model(cls_config(**kwargs)).eval()  # as from_pretrained returns it
    return SpeechModel(f"noisy-{family}", family, backbone,
                       tf.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True))


def _first_training_forward(model, config, tmp_path):
    """The backbone's first forward with gradients in a training run, and the same forward in eval mode."""
    import copy

    train, val = learnable(rows=8)
    initial = copy.deepcopy(model.backbone).eval()
    seen = []

    def record(module, args, output):
        if torch.is_grad_enabled() and not seen:
            seen.append((args[0].detach().clone(), output.last_hidden_state.detach().clone(), module.training))

    handle = model.backbone.register_forward_hook(record)
    try:
        train_model(model, train, val, np.arange(3), tmp_path, config, device="cpu", progress=False,
                    stop_after_steps=1)
    finally:
        handle.remove()
    inputs, output, training = seen[0]
    with torch.no_grad():
        reference = initial(inputs).last_hidden_state
    return output, reference, training


@pytest.mark.parametrize("family", ["wav2vec2", "hubert"])
def test_paper_recipe_trains_in_eval_mode(family, tmp_path):
    """Catches model.train() in the paper's recipe: the authors never leave eval mode, so no masking,
    LayerDrop or dropout; the improved recipe (train_mode=True) has them."""
    paper = replace(FAST, epochs=1)
    assert paper.train_mode is False and TuningConfig().train_mode is False
    output, reference, training = _first_training_forward(_noisy_tiny_model(family), paper, tmp_path / "paper")
    assert training is False and torch.allclose(output, reference, atol=1e-5)
    output, reference, training = _first_training_forward(_noisy_tiny_model(family), replace(paper, train_mode=True),
                                                          tmp_path / "train")
    assert training is True and not torch.allclose(output, reference, atol=1e-3)


def test_tuning_data_indexes_every_row_of_every_story_and_batches_them():
    """Catches rows left out of the index, or a batch that pairs a window with another row's target."""
    windows = [np.arange(12, dtype=np.float32).reshape(3, 4), 100 + np.arange(8, dtype=np.float32).reshape(2, 4)]
    targets = [np.arange(15, dtype=np.float32).reshape(3, 5), -np.arange(10, dtype=np.float32).reshape(2, 5)]
    data = TuningData(windows, targets)
    assert len(data) == 5 and data.window_samples == 4
    assert data.index.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]]
    x, y = data.batch(np.array([4, 0]))
    np.testing.assert_array_equal(x, [windows[1][1], windows[0][0]])
    assert isinstance(y, torch.Tensor)
    np.testing.assert_array_equal(y.numpy(), [targets[1][1], targets[0][0]])


def test_the_chunk_control_permutes_at_random_unless_a_distance_is_given():
    """Catches a default distance other than 0, which would swap chunks in turn instead."""
    targets = [np.arange(40, dtype=float)[:, None]]
    default = control_targets(targets, "chunk_permute", 4, np.random.default_rng(3))
    random = control_targets(targets, "chunk_permute", 4, np.random.default_rng(3), chunk_distance=0)
    swapped = control_targets(targets, "chunk_permute", 4, np.random.default_rng(3), chunk_distance=1)
    np.testing.assert_array_equal(default[0], random[0])
    assert not np.array_equal(default[0], swapped[0])


def test_controls_follow_the_authors_rules():
    """Catches a control that keeps a story's own responses, a wrong top-up, or swaps nearer than 10 chunks."""
    from bt_tutorial.brain_tuning.samples import chunk_order

    rng = np.random.default_rng(0)
    targets = [np.full((30, 1), 0.0), np.arange(12.0)[:, None] + 100, np.full((20, 1), 2.0)]
    sources = set()
    for _ in range(20):
        other = control_targets(targets, "other_story", 15, rng)
        assert [len(t) for t in other] == [30, 12, 20]
        assert not np.any(other[0] == 0) and not np.any(other[2] == 2)  # never the story's own
        sources.add("story 1" if other[0][0, 0] >= 100 else "story 2")
        if np.all(other[0] >= 100):  # 12 rows of story 1, topped up with 18 of its rows drawn at random
            assert np.array_equal(other[0][:12, 0], np.arange(12.0) + 100)
            assert len(np.unique(other[0][12:])) > 3 and not np.array_equal(other[0][12:24], other[0][:12])
    assert sources == {"story 1", "story 2"}  # a random other story, not always the next one
    class Recorder:  # each draw: chunk i swaps with one of i + 10 ... last
        calls = []

        def integers(self, low, high):
            self.calls.append((low, high))
            return high - 1

    order = chunk_order(15 * 25 + 7, 15, 10, Recorder())  # 26 chunks, the last of 7 rows
    assert Recorder.calls == [(i + 10, 26) for i in range(16)]
    assert sorted(order) == list(range(382)) and np.array_equal(order[:7], np.arange(375, 382))
    assert all(np.array_equal(np.diff(order[a:a + 15]), np.ones(14)) for a in range(7, 382, 15))  # chunks whole
    shuffled = chunk_order(15 * 25 + 7, 15, 10, np.random.default_rng(1))
    assert sorted(shuffled) == list(range(382)) and np.mean(shuffled == np.arange(382)) < 0.5
    with pytest.warns(UserWarning, match="too few to swap"):
        short = chunk_order(60, 15, 10, np.random.default_rng(0))
    assert sorted(short) == list(range(60))


def test_padded_whisper_head_averages_the_audio_frames_only():
    """Catches a mean over all 1,500 frames of a window padded to 30 s: the authors' WhisperLinear
    averages the frames of the audio (the first duration * 50)."""
    from bt_tutorial.brain_tuning.model import BrainTunedModel

    speech = load_speech_model("tiny-whisper", whisper_pad_to_30s=True)
    model = BrainTunedModel(speech, 3, window_samples=64000).eval()
    x = speech.prepare(np.random.default_rng(0).standard_normal((2, 64000)).astype(np.float32))
    with torch.no_grad():
        states = speech.last_hidden_state(x)
        assert states.shape[1] == 1500
        assert torch.allclose(model.pool(x), states[:, :200].mean(1), atol=1e-6)
        assert torch.allclose(model(x), model.head(states[:, :200].mean(1)), atol=1e-6)
    cut = load_speech_model("tiny-whisper")
    whole = BrainTunedModel(cut, 3, window_samples=64000).eval()
    with torch.no_grad():
        y = cut.prepare(np.zeros((1, 64000), np.float32))
        assert torch.allclose(whole.pool(y), cut.last_hidden_state(y).mean(1))


def test_training_pools_a_padded_whisper_over_the_windows_audio_frames(tmp_path):
    """Catches train_model building its model without the window length: a padded Whisper would then
    average its 1,500 frames, padding included. Its starting scores are those of the right model."""
    from bt_tutorial.brain_tuning.loop import evaluate
    from bt_tutorial.brain_tuning.model import BrainTunedModel

    train, val = linear_target(n_stories=3, rows=8)
    config = TuningConfig(**{**FAST.__dict__, "epochs": 1, "mixed_precision": False})
    result = train_model(load_speech_model("tiny-whisper", whisper_pad_to_30s=True), train, val, np.arange(3),
                         tmp_path, config, device="cpu", progress=False)
    torch.manual_seed(config.seed)
    model = BrainTunedModel(load_speech_model("tiny-whisper", whisper_pad_to_30s=True), 3, train.window_samples)
    expected = evaluate(model, val, config.batch_size)
    assert result.initial["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-5)
    assert result.initial["val_r"] == pytest.approx(expected["val_r"], abs=1e-5)


def test_training_shows_its_bars_only_when_asked(tmp_path, capsys):
    train, val = linear_target(n_stories=3, rows=8)
    config = TuningConfig(**{**FAST.__dict__, "epochs": 1, "head_init": "ridge"})
    train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path / "quiet", config,
                device="cpu", progress=False)
    quiet = capsys.readouterr().err  # transformers' save_pretrained has a bar of its own
    assert "pooled outputs" not in quiet and "epoch 1" not in quiet
    train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path / "bars", config,
                device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "pooled outputs: 100%" in err and "epoch 1" in err


def test_paper_recipe_learning_rates_per_epoch(monkeypatch, tmp_path):
    """Catches a schedule that is not the authors' in a real run: Adam without weight decay, the
    backbone at 0, 0.2 and 0.4 of 5e-5 in epochs 1-3, the head at 1, 0.8 and 0.64 of 1e-4."""
    class Recording(torch.optim.Adam):
        made = []

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.rates = []
            Recording.made.append(self)

        def step(self, closure=None):
            self.rates.append([group["lr"] for group in self.param_groups])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", Recording)
    train, val = learnable(n_stories=3, rows=8)
    config = TuningConfig(window_trs=1, batch_size=4, effective_batch=4, epochs=3)
    train_model(load_speech_model("tiny-hubert"), train, val, np.arange(3), tmp_path, config, device="cpu",
                progress=False)
    adam = Recording.made[-1]
    assert all(g["weight_decay"] == 0 and g["betas"] == (0.9, 0.999) for g in adam.param_groups)
    per_epoch = len(adam.rates) // 3
    assert per_epoch == 4  # 2 stories of 8 rows, 4 consecutive rows per step
    for epoch, (backbone, head) in enumerate([(0.0, 1.0), (0.2, 0.8), (0.4, 0.64)]):
        for rates in adam.rates[epoch * per_epoch:(epoch + 1) * per_epoch]:
            assert rates == pytest.approx([backbone * 5e-5, head * 1e-4]), epoch


def test_other_story_top_up_draws_every_row_and_a_single_story_is_refused():
    """Catches a top-up that never draws the source's first row, and a missing refusal of one story."""
    targets = [np.zeros((30, 1)), np.array([[100.0], [101.0]])]
    other = control_targets(targets, "other_story", 15, np.random.default_rng(0))
    assert set(other[0][:, 0]) == {100.0, 101.0} and other[0][0, 0] == 100.0
    assert set(other[0][2:, 0]) == {100.0, 101.0}  # 28 random draws from both rows
    with pytest.raises(ValueError, match="The 'other_story' control needs at least 2 training stories"):
        control_targets(targets[:1], "other_story", 15, np.random.default_rng(0))


def test_chunk_permute_passes_the_distance_and_falls_back_to_a_random_order():
    """Catches the distance dropped on the way to chunk_order, a story of exactly ``distance`` chunks
    left in order, a forward swap used as the fallback, an empty story, and the warning's caller."""
    from bt_tutorial.brain_tuning.samples import chunk_order

    story = np.arange(40 * 15.0)[:, None]
    got = control_targets([story], "chunk_permute", 15, np.random.default_rng(3), chunk_distance=10)
    assert np.array_equal(got[0][:, 0], chunk_order(600, 15, 10, np.random.default_rng(3)))
    with pytest.warns(UserWarning, match="10 chunks of 15 TRs, too few to swap chunks 10 apart") as caught:
        control_targets([np.arange(150.0)[:, None]], "chunk_permute", 15, np.random.default_rng(0), 10)
    assert caught[0].filename == __file__ or "MUTANT_UNDER_TEST" in os.environ  # mutmut adds frames
    with pytest.warns(UserWarning):
        orders = [chunk_order(150, 15, 10, np.random.default_rng(seed)) for seed in range(40)]
    assert any(not np.array_equal(o, np.arange(150)) for o in orders)
    assert any(o[0] == 0 for o in orders)  # a random permutation may keep chunk 0 first; a forward swap never
    with pytest.warns(UserWarning):
        assert chunk_order(0, 15, 10, np.random.default_rng(0)).shape == (0,)


def test_tr_windows_default_to_five_trs():
    """Catches a changed default window (the authors' 5 TRs, 10.045 s)."""
    w = tr_windows(np.zeros(16000 * 30, np.float32), np.array([20.0]))
    assert 5 * 2.0045 * 16000 <= w.shape[1] < 5 * 2.0045 * 16000 + 320


@pytest.mark.parametrize("extra", [500, -3])
def test_a_story_with_other_voxel_columns_is_refused(tiny_twin, monkeypatch, extra):
    """Catches training on columns picked by the test story's indices from a story with more voxels
    (silently other voxels), or an IndexError from one with fewer."""
    from bt_tutorial.brain_tuning.samples import prepare_tuning_data

    ds = LebelDataset(tiny_twin)
    story = ds.split("UTS01")["train"][0]
    original = ds.load_responses

    def responses(subject, name):
        y = original(subject, name)
        if name != story:
            return y
        return np.hstack([y, np.ones((len(y), extra), y.dtype)]) if extra > 0 else y[:, :extra]

    monkeypatch.setattr(ds, "load_responses", responses)
    with pytest.raises(ValueError, match=f"UTS01, {story}: .* voxel columns, but the test story's repeats"):
        prepare_tuning_data(load_speech_model("tiny-whisper"), ds, "UTS01", TuningConfig(ceiling_threshold=0.0))


def test_brain_tune_passes_every_setting_to_the_data_and_the_loop(tiny_twin, tmp_path, monkeypatch):
    """Catches a setting dropped between brain_tune and the training loop (resume, device, progress,
    the step limit, overwrite, the subject) and changed defaults."""
    from bt_tutorial.brain_tuning import loop

    calls = {}
    monkeypatch.setattr(loop, "prepare_tuning_data", lambda *a: calls.setdefault("data", a) and ("t", "v", "x"))
    monkeypatch.setattr(loop, "train_model", lambda *a, **k: calls.setdefault("loop", (a, k)))
    model, ds = load_speech_model("tiny-hubert"), LebelDataset(tiny_twin)
    loop.brain_tune(model, ds, "UTS01", tmp_path / "a", FAST, resume=True, device="cpu", progress=False,
                    stop_after_steps=3, overwrite=True)
    assert calls["data"] == (model, ds, "UTS01", FAST)
    args, kwargs = calls.pop("loop")
    assert args == (model, "t", "v", "x", tmp_path / "a", FAST, True, "cpu", False, 3)
    assert kwargs == {"overwrite": True, "subject": "UTS01"}
    loop.brain_tune(model, ds, "UTS01", tmp_path / "b", FAST)
    args, kwargs = calls["loop"]
    assert args[6:] == (False, None, True, None) and kwargs == {"overwrite": False, "subject": "UTS01"}


def test_tuned_model_dir_names_model_subject_and_control(tmp_path):
    from bt_tutorial.brain_tuning.settings import tuned_model_dir

    assert tuned_model_dir(tmp_path, "openai/whisper-tiny", "UTS02") == tmp_path / "tuned" / (
        "openai--whisper-tiny_UTS02") / "brain"
    assert tuned_model_dir(tmp_path, "tiny-hubert", "UTS01", "chunk_permute").name == "control-chunk_permute"


# 3 training stories of 8 rows, 8 rows a step: 3 steps an epoch, 9 in all; a checkpoint every 2 steps
# (steps 2, 4 and 8 within epochs, 3, 6 and 9 at their ends). Dropout, LayerDrop and SpecAugment on,
# batches shuffled each epoch: every random state a resume must put back.
WITHIN = replace(FAST, epochs=3, batch_order="shuffled", train_mode=True, checkpoint_every_steps=2)


@pytest.fixture(scope="module")
def cut_within_an_epoch(tmp_path_factory):
    """The final weights of an uninterrupted run, and a run folder cut after step 5 (epoch 2, step 2 of 3)."""
    root = tmp_path_factory.mktemp("within")
    train, val = learnable(rows=8)
    full = _noisy_tiny_model("hubert")
    train_model(full, train, val, np.arange(3), root / "full", replace(WITHIN, checkpoint_every_steps=0),
                device="cpu", progress=False)
    partial = train_model(_noisy_tiny_model("hubert"), train, val, np.arange(3), root / "cut", WITHIN,
                          device="cpu", progress=False, stop_after_steps=5)
    assert not partial.completed and len(partial.history) == 1
    return {k: v.clone() for k, v in full.backbone.state_dict().items()}, root / "cut"


def _resume_within(folder, config=WITHIN, **kwargs):
    train, val = learnable(rows=8)
    model = _noisy_tiny_model("hubert")
    result = train_model(model, train, val, np.arange(3), folder, config, resume=True, device="cpu",
                         progress=False, **kwargs)
    return model, result


def test_resume_within_an_epoch_gives_the_same_weights(cut_within_an_epoch, tmp_path):
    """Catches a resume that repeats or skips the batches of the interrupted epoch, or loses a random state."""
    import shutil

    from bt_tutorial.brain_tuning import runs

    weights, cut = cut_within_an_epoch
    shutil.copytree(cut, tmp_path / "run")
    saved = runs.load_checkpoint(tmp_path / "run" / runs.CHECKPOINT, "cpu")
    assert (saved["epoch"], saved["progress"]["step"], len(saved["progress"]["losses"])) == (1, 1, 1)
    model, result = _resume_within(tmp_path / "run", replace(WITHIN, checkpoint_every_steps=3))
    assert result.completed and [h["epoch"] for h in result.history] == [1, 2, 3]
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(weights[name], value), name
    import json

    uninterrupted = json.loads((cut.parent / "full" / "history.json").read_text())
    for mine, theirs in zip(result.history, uninterrupted):  # epoch 2's loss counts its steps before the cut
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-6), mine["epoch"]


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(cut_within_an_epoch, tmp_path):
    """Catches a truncated latest checkpoint that stops the resume, or that replaces the good previous one."""
    import shutil

    from bt_tutorial.brain_tuning import runs

    weights, cut = cut_within_an_epoch
    run = tmp_path / "run"
    shutil.copytree(cut, run)
    latest, previous = run / runs.CHECKPOINT, run / runs.PREVIOUS
    latest.write_bytes(latest.read_bytes()[:1000])
    with pytest.warns(RuntimeWarning, match="latest checkpoint is damaged") as caught:
        _, result = _resume_within(run, stop_after_steps=1)  # epoch 2's step 1 again: a checkpoint, then stop
    message = " ".join(str(caught[0].message).split())  # wrapped to 80 columns
    assert re.search(rf"Cannot load {latest} .*from the previous checkpoint {previous} \(the end of epoch 1\)",
                     message), message
    assert not result.completed
    assert runs.load_checkpoint(previous, "cpu")["epoch"] == 1  # the good one is kept, not the damaged one
    assert runs.load_checkpoint(latest, "cpu")["progress"]["step"] == 1
    model, result = _resume_within(run)
    assert result.completed
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(weights[name], value), name


def test_patience_stops_after_that_many_epochs_without_a_better_validation_score(monkeypatch, tmp_path):
    """Catches patience counted from the wrong epoch or compared with > instead of >= (one epoch too many),
    and a tie taken for an improvement."""
    from bt_tutorial.brain_tuning import loop

    scripted = iter([2.0, 1.0, 0.9, 0.9, 0.97, 0.5, 0.4])  # the first one scores the initial model
    monkeypatch.setattr(loop, "evaluate", lambda *a, **k: {"val_loss": next(scripted), "val_r": 0.0})
    train, val = learnable(n_stories=2, rows=4)
    config = TuningConfig(window_trs=1, batch_size=4, effective_batch=4, epochs=6, patience=2)
    result = train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path, config,
                         device="cpu", progress=False)
    assert [h["val_loss"] for h in result.history] == [1.0, 0.9, 0.9, 0.97]  # epochs 3 and 4 bring nothing
    assert result.best_epoch == 2 and result.initial["val_loss"] == 2.0


@pytest.mark.parametrize("effective_batch", [4, 8])
def test_train_loss_is_the_mean_of_the_steps_losses(effective_batch, monkeypatch, tmp_path):
    """Catches a step's loss summed from a start other than 0, or the epoch's mean taken over other steps;
    with two chunks a step, a chunk's weight divided instead of multiplied or the chunks' losses not summed."""
    recorded = []
    mse = torch.nn.functional.mse_loss

    def recording(*args, **kwargs):
        loss = mse(*args, **kwargs)
        recorded.append(loss.item())
        return loss

    monkeypatch.setattr(torch.nn.functional, "mse_loss", recording)
    train, val = learnable(n_stories=3, rows=8)
    config = TuningConfig(window_trs=1, batch_size=4, effective_batch=effective_batch, epochs=2)
    result = train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path, config,
                         device="cpu", progress=False)
    per_epoch = len(recorded) // 2
    assert per_epoch == 4  # 2 stories of 8 rows in chunks of 4 rows: 4 steps, or 2 steps of 2 chunks
    for epoch, h in enumerate(result.history):
        assert h["train_loss"] == pytest.approx(np.mean(recorded[epoch * per_epoch:(epoch + 1) * per_epoch]),
                                                rel=1e-6)


def test_a_run_stopped_within_its_first_epoch_has_no_best_epoch(tmp_path):
    """Catches best_epoch starting at 1 (a run stopped before any epoch ended would name an epoch never scored),
    and a stopped run that loses its folder, voxels or initial scores."""
    train, val = learnable(n_stories=3, rows=8)
    config = TuningConfig(window_trs=1, batch_size=4, effective_batch=4, epochs=2)
    result = train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path, config,
                         device="cpu", progress=False, stop_after_steps=1)
    assert (result.best_epoch, result.history, result.completed) == (0, [], False)
    assert result.backbone_dir == tmp_path / "backbone" and np.array_equal(result.voxels, np.arange(3))
    assert set(result.initial) == {"val_loss", "val_r"}  # the untrained model's scores are kept


@pytest.fixture
def step_clock(monkeypatch):
    """The loop's clock, made to tick one second per optimizer step (and never otherwise)."""
    import types

    from bt_tutorial.brain_tuning import loop

    clock = {"now": 1000.0}

    class Ticking(torch.optim.Adam):
        def step(self, closure=None):
            clock["now"] += 1.0
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", Ticking)
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    return clock


def test_throughput_counts_the_epochs_samples_over_its_own_time(step_clock, tmp_path):
    """Catches samples_per_s computed with the clock's start shifted, added instead of subtracted, or
    multiplied: on a clock that ticks one second per optimizer step, 4 rows a step give 4 samples/s."""
    train, val = learnable(n_stories=3, rows=8)
    config = TuningConfig(window_trs=1, batch_size=4, effective_batch=4, epochs=2)
    result = train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path, config,
                         device="cpu", progress=False)
    assert [h["samples_per_s"] for h in result.history] == [4.0, 4.0]


def test_throughput_of_an_epoch_resumed_midway_counts_both_parts(step_clock, tmp_path):
    """Catches a resumed epoch's throughput that forgets the samples or the seconds before the cut:
    2 steps, a checkpoint, a stop, then 2 more steps must still give 4 rows a step."""
    train, val = learnable(n_stories=3, rows=8)
    config = TuningConfig(window_trs=1, batch_size=4, effective_batch=4, epochs=1, checkpoint_every_steps=2)
    model = load_speech_model("tiny-whisper")
    cut = train_model(model, train, val, np.arange(3), tmp_path, config, device="cpu", progress=False,
                      stop_after_steps=2)
    assert not cut.completed and step_clock["now"] == 1002.0  # exactly 2 optimizer steps before the stop
    step_clock["now"] += 500.0  # the time between the two sessions is not training time
    result = train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path, config,
                         resume=True, device="cpu", progress=False)
    assert result.completed and [h["samples_per_s"] for h in result.history] == [4.0]


def test_a_checkpoint_is_saved_after_every_given_step_but_the_epochs_last(tmp_path):
    """Catches the within-epoch checkpoint skipped one step early (or kept at an epoch's last step,
    which the end of the epoch saves anyway)."""
    from bt_tutorial.brain_tuning.runs import CHECKPOINT, load_checkpoint

    train, val = learnable(n_stories=3, rows=8)
    config = TuningConfig(window_trs=1, batch_size=4, effective_batch=4, epochs=1, checkpoint_every_steps=1)
    for steps in (1, 2, 3):
        out = tmp_path / str(steps)
        train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), out, config, device="cpu",
                    progress=False, stop_after_steps=steps)
        assert load_checkpoint(out / CHECKPOINT, "cpu")["progress"]["step"] == steps


def test_a_non_finite_loss_names_the_epoch_and_step_it_happened_at(monkeypatch, tmp_path):
    """Catches the step in the message counted from 0 or off by one (users look for it in the log)."""
    calls = []
    mse = torch.nn.functional.mse_loss

    def nan_at_the_third(*args, **kwargs):
        calls.append(1)
        loss = mse(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(torch.nn.functional, "mse_loss", nan_at_the_third)
    train, val = learnable(n_stories=3, rows=8)
    config = TuningConfig(window_trs=1, batch_size=4, effective_batch=4, epochs=2)
    with pytest.raises(FloatingPointError, match=r"loss is nan at epoch 1, step 3: lower"):
        train_model(load_speech_model("tiny-whisper"), train, val, np.arange(3), tmp_path, config,
                    device="cpu", progress=False)


def test_mps_asked_for_where_it_is_missing_is_refused_by_name(monkeypatch, tmp_path):
    """Catches the MPS check inverted or dropped, its message lost, and train_model not checking its device."""
    from bt_tutorial.brain_tuning.loop import check_device

    model, (train, val) = load_speech_model("tiny-hubert"), learnable()  # transformers asks torch about MPS
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="Device 'mps' asked for, but MPS is not available here: use 'cpu'"):
        check_device("mps")
    with pytest.raises(ValueError, match="Device 'mps' asked for, but MPS is not available here"):
        train_model(model, train, val, np.arange(3), tmp_path / "run", FAST, device="mps", progress=False)
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert check_device("mps") == "mps" and check_device("cpu") == "cpu" and check_device(None) is None
