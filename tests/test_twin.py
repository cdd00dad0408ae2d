"""The synthetic twin: layout, determinism, timings, noise ceilings."""

import json
from dataclasses import replace

import h5py
import numpy as np
import pytest
import soundfile as sf

from bt_tutorial.alignment.noise_ceiling import cc_max, lebel_noise_ceiling_summary
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.lowlevel.phones import ARPABET
from bt_tutorial.synthetic.phonemes import to_arpabet
from bt_tutorial.synthetic.speech import synthesize
from bt_tutorial.synthetic.truth import load_ground_truth
from bt_tutorial.synthetic.twin import make_synthetic_twin


def test_demo_twin_has_the_ds003020_layout(twin_root):
    ds = LebelDataset(twin_root)
    assert len(ds.subjects) >= 3
    stories = ds.stories()
    assert len(ds.split(ds.subjects[0])["train"]) >= 10
    for story in stories:
        assert ds.textgrid_path(story).is_file()
        info = sf.info(str(ds.audio_path(story)))
        assert info.samplerate == 44100
        minutes = info.duration / 60
        assert 2 <= minutes <= (6.5 if story == "wheretheressmoke" else 4)
        for subject in ds.subjects:
            with h5py.File(ds.response_path(subject, story), "r") as f:
                assert f["data"].dtype == np.float64
                assert f["data"].shape[0] == ds.respdict[story] - 20
                if story == "wheretheressmoke":
                    assert f["individual_repeats"].shape == (10, *f["data"].shape)
                    assert np.allclose(f["individual_repeats"][()].mean(0), f["data"][()])
                else:
                    assert "individual_repeats" not in f


def test_ground_truth_describes_every_voxel(twin_root):
    info = load_ground_truth(twin_root)
    ds = LebelDataset(twin_root)
    for subject in info["subjects"]:
        gt = load_ground_truth(twin_root, subject)
        n_vox = ds.load_responses(subject, "stagefright").shape[1]
        for key in ("vertex", "hemi", "roi", "true_noise_ceiling", "noise_sd", "semantic_fraction"):
            assert gt[key].shape == (n_vox,)
        assert gt["w_semantic"].shape[1] == gt["w_lowlevel"].shape[1] == n_vox
        assert set(np.unique(gt["roi"])) == set(range(len(gt["roi_names"])))
    story = load_ground_truth(twin_root, story="stagefright")
    assert story["semantic"].shape[0] == ds.respdict["stagefright"] - 20


def test_noise_ceilings_look_like_lebel(twin_root):
    """Estimated ceilings land near the real distribution and track the true ones."""
    reference = lebel_noise_ceiling_summary()  # the copy the package ships
    ds = LebelDataset(twin_root)
    for subject in ds.subjects:
        est = cc_max(ds.load_repeats(subject))
        assert 0.15 <= (est > 0.4).mean() <= 0.55
        assert 0.2 <= np.median(est) <= 0.45
        assert abs((est == 0).mean() - reference[subject]["frac_zero"]) < 0.2
        true = load_ground_truth(twin_root, subject)["true_noise_ceiling"]
        assert np.corrcoef(est[true > 0.1], true[true > 0.1])[0, 1] >= 0.9


def test_same_seed_same_arrays_other_seed_differs(tiny_twin, tiny_spec, tmp_path):
    again = make_synthetic_twin(tmp_path / "again", tiny_spec, progress=False)
    other = make_synthetic_twin(tmp_path / "other", replace(tiny_spec, seed=8), progress=False)
    files = sorted(p.relative_to(tiny_twin) for p in tiny_twin.rglob("*") if p.is_file()
                   and p.name != "twin.json")
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file()
                           and p.name != "twin.json")
    for rel in files:
        if rel.suffix == ".hf5":
            with h5py.File(tiny_twin / rel) as a, h5py.File(again / rel) as b:
                for key in a:
                    assert np.array_equal(a[key][()], b[key][()]), rel
        else:
            assert (tiny_twin / rel).read_bytes() == (again / rel).read_bytes(), rel
    wav = "stimuli/stagefright.wav"
    assert (tiny_twin / wav).read_bytes() != (other / wav).read_bytes()


def test_timings_are_exact_speech_inside_words_silence_between(tiny_twin):
    ds = LebelDataset(tiny_twin)
    story = ds.load_story("stagefright")
    audio = story.load_audio()
    wav, sr = audio.waveform, audio.sample_rate

    def rms(t0, t1):
        seg = wav[int(t0 * sr): int(t1 * sr)]
        return np.sqrt(np.mean(seg ** 2))

    speech = np.median([rms(s, e) for s, e in zip(story.words.starts, story.words.ends)])
    gaps = [(e, s) for e, s in zip(story.words.ends[:-1], story.words.starts[1:]) if s - e > 0.2]
    assert gaps, "sentence pauses expected"
    silence = max(rms(a + 0.02, b - 0.02) for a, b in gaps)
    assert silence < 0.01 * speech


def test_phones_of_a_sentence():
    u = synthesize("The fisherman pulled the heavy net.", "en-us+m3", 160, 50)
    assert [w for w, _, _ in u.words] == ["the", "fisherman", "pulled", "the", "heavy", "net"]
    labels = [p for p, _, _ in u.phones]
    assert {p.rstrip("012") for p in labels} <= set(ARPABET)
    assert labels[:2] == ["DH", "AH0"] or labels[0] == "DH"
    starts = [s for _, s, _ in u.phones]
    assert starts == sorted(starts) and u.phones[-1][2] <= u.duration


def test_arpabet_mapping_and_unknown_phoneme():
    assert to_arpabet("'aI@") == ("AY1", "ER0")
    assert to_arpabet("@2") == ("AH0",) and to_arpabet("_:") == ()
    with pytest.raises(KeyError, match="no ARPAbet"):
        to_arpabet("Q!")


def _fake_twin(out, spec, progress=True):
    """What ensure_twin needs of a generated twin: some files and the summary that lists them."""
    import json
    from dataclasses import asdict

    from bt_tutorial.synthetic import twin

    (out / "derivative").mkdir(parents=True)
    (out / "derivative" / "respdict.json").write_text("{}")
    (out / "ground_truth").mkdir()
    info = {"version": twin.GENERATOR_VERSION, "spec": asdict(spec),
            "files": ["derivative/respdict.json"]}
    (out / "ground_truth" / "twin.json").write_text(json.dumps(info))
    return out


def test_ensure_twin_says_where_it_generates_and_never_deletes_foreign_files(tmp_path, monkeypatch, caplog):
    from bt_tutorial.synthetic import twin
    from bt_tutorial.synthetic.twin import TwinSpec

    monkeypatch.setattr(twin, "make_synthetic_twin", _fake_twin)
    root = tmp_path / "missing" / "synthetic_twin"
    with caplog.at_level("WARNING"):
        assert twin.ensure_twin(root, TwinSpec(seed=1), progress=False) == root
    assert f"Generating the synthetic twin in {root}" in caplog.text
    caplog.clear()
    assert twin.ensure_twin(root, TwinSpec(seed=1)) == root and not caplog.text  # reused, silent
    twin.ensure_twin(root, TwinSpec(seed=2))  # another spec, only the twin's files: replaced
    assert "another version or spec" in caplog.text
    (root / "derivative" / "my_notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="files it did not write: derivative/my_notes.txt"):
        twin.ensure_twin(root, TwinSpec(seed=3))
    assert (root / "derivative" / "my_notes.txt").read_text() == "keep me"
    (root / "derivative" / "my_notes.txt").unlink()
    info = json.loads((root / "ground_truth" / "twin.json").read_text())
    del info["files"]  # a twin written before the list existed: its layout says what it wrote
    (root / "ground_truth" / "twin.json").write_text(json.dumps(info))
    (root / "derivative" / "preprocessed_data").mkdir()
    (root / "derivative" / "preprocessed_data" / "my_subject.hf5").write_text("keep me")
    with pytest.raises(FileExistsError, match="did not write: derivative/preprocessed_data/my_subject.hf5"):
        twin.ensure_twin(root, TwinSpec(seed=4))
    (root / "derivative" / "preprocessed_data" / "my_subject.hf5").unlink()
    twin.ensure_twin(root, TwinSpec(seed=4))  # only the layout's files: replaced
    assert json.loads((root / "ground_truth" / "twin.json").read_text())["spec"]["seed"] == 4
    info = root / "ground_truth" / "twin.json"
    info.write_text(info.read_text()[:40])  # truncated
    with pytest.raises(FileExistsError, match=rf"{info} is damaged \(JSONDecodeError.*delete the folder {root}"):
        twin.ensure_twin(root, TwinSpec(seed=4))


def test_twin_script_answers_a_folder_in_the_way_with_one_line(tmp_path, capsys, monkeypatch):
    import importlib.util
    from pathlib import Path

    from bt_tutorial.synthetic import __main__ as module

    script = Path(__file__).resolve().parents[1] / "data_scripts" / "make_synthetic_twin.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_twin", script)
    wrapper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wrapper)
    assert wrapper.main is module.main  # the checkout's script is the module
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    for out in ("file", "full"):
        assert module.main(["--out", str(tmp_path / out), "--no-progress"]) == 2
        assert capsys.readouterr().err.strip() == f"error: {tmp_path / out} exists and is not an empty folder; choose a new folder."

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "make_synthetic_twin", disk_full)
    assert module.main(["--out", str(tmp_path / "new"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error: [Errno 28] No space left on device")


def test_projection_stats_match_the_stacked_projection():
    from bt_tutorial.synthetic.twin import _projection_stats

    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal((n, 3)) + 2.0 for n in (5, 9, 4)]
    weights = rng.standard_normal((3, 7))
    weights[:, 6] = 0.0  # a constant projection keeps s.d. 1, as zscore does
    mean, sd = _projection_stats(blocks, weights)
    stacked = np.vstack(blocks) @ weights
    assert np.allclose(mean, stacked.mean(0))
    assert np.allclose(sd[:6], stacked.std(0)[:6]) and sd[6] == 1.0


def test_a_twin_of_real_size_repeats_points_with_their_own_noise(tmp_path, tiny_spec):
    from bt_tutorial.synthetic.cortex import N_POINTS

    names = ("alternateithicatom", "souls")
    spec = replace(tiny_spec, n_voxels=N_POINTS + 40, train_story_names=names)
    root = make_synthetic_twin(tmp_path / "big", spec, progress=False)
    ds = LebelDataset(root)
    assert ds.split("UTS01")["train"] == list(names)
    y = ds.load_responses("UTS01", "souls")
    assert y.shape[1] == N_POINTS + 40
    truth = load_ground_truth(root, "UTS01")
    extra = np.arange(N_POINTS, N_POINTS + 40)
    assert np.array_equal(truth["roi"][extra], truth["roi"][extra - N_POINTS])
    assert np.array_equal(truth["vertex"][extra], truth["vertex"][extra - N_POINTS])
    assert not np.allclose(y[:, extra], y[:, extra - N_POINTS])  # own noise
    saved = json.loads((root / "ground_truth" / "twin.json").read_text())
    assert saved["spec"] == spec.as_json()
    with pytest.raises(ValueError, match="n_train_stories <= 2"):
        replace(spec, n_train_stories=3)
    with pytest.raises(ValueError, match="n_voxels >= 5124"):
        replace(spec, n_voxels=100)


def test_two_processes_generating_one_twin_wait_for_each_other(tmp_path):
    """Catches two notebooks started together both writing one twin, which ended with no respdict,
    TextGrids or wavs but a twin.json that marked it complete."""
    import subprocess
    import sys

    code = ("import sys; from bt_tutorial.synthetic.twin import TwinSpec, ensure_twin; "
            "ensure_twin(sys.argv[1], TwinSpec(seed=7, n_subjects=1, n_train_stories=2, story_seconds=20.0, "
            "test_story_seconds=30.0, n_repeats=2), progress=False)")
    root = tmp_path / "twin"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root)], stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    info = json.loads((root / "ground_truth" / "twin.json").read_text())
    assert all((root / f).is_file() for f in info["files"]) and (root / "derivative" / "respdict.json").is_file()
    assert any("Another process is generating the synthetic twin" in e for e in errors)


def test_ctrl_c_while_writing_the_twin_then_the_same_command_writes_it(tmp_path, capsys, monkeypatch, tiny_spec):
    """Catches a rerun refusing the half-written twin a Ctrl-C left ('not an empty folder'), or a traceback."""
    from bt_tutorial.synthetic import __main__ as module
    from bt_tutorial.synthetic import twin

    monkeypatch.setattr(module, "TwinSpec", lambda seed: replace(tiny_spec, seed=seed))
    real, calls = twin._write_stimulus, []

    def ctrl_c(*args):  # while writing the second story's audio
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(twin, "_write_stimulus", ctrl_c)
    out = tmp_path / "twin"
    argv = ["--out", str(out), "--seed", "3", "--no-progress"]
    assert module.main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines() == [(
        f"interrupted: the synthetic twin is not finished; `python -m bt_tutorial.synthetic {' '.join(argv)}` "
        "writes it afresh.")]
    assert (out / "stimuli" / f"{calls[0]}.wav").is_file() and not (out / "ground_truth" / "twin.json").exists()
    monkeypatch.setattr(twin, "_write_stimulus", real)
    assert module.main(argv) == 0
    assert "interrupted: writing it again" in capsys.readouterr().out
    info = json.loads((out / "ground_truth" / "twin.json").read_text())
    assert info["spec"]["seed"] == 3 and all((out / f).is_file() for f in info["files"])
    assert not (out / "ground_truth" / twin.INCOMPLETE).exists()
    assert LebelDataset(out).load_responses("UTS01", "stagefright").shape[1] > 0
    assert module.main(argv) == 0 and "synthetic twin ready" in capsys.readouterr().out  # finished: kept


def test_ensure_twin_writes_again_a_twin_left_half_written(tmp_path, monkeypatch, caplog):
    """Catches ensure_twin refusing its own half-written twin as 'not a synthetic twin'."""
    from bt_tutorial.synthetic import twin
    from bt_tutorial.synthetic.twin import TwinSpec

    root = tmp_path / "synthetic_twin"
    (root / "ground_truth").mkdir(parents=True)
    (root / "ground_truth" / twin.INCOMPLETE).write_text("")
    (root / "stimuli").mkdir()
    (root / "stimuli" / "half.wav").write_bytes(b"RIFF")
    monkeypatch.setattr(twin, "make_synthetic_twin", _fake_twin)
    with caplog.at_level("WARNING"):
        assert twin.ensure_twin(root, TwinSpec(seed=1), progress=False) == root
    assert "interrupted while being written" in caplog.text
    assert not (root / "stimuli").exists() and (root / "ground_truth" / "twin.json").is_file()
    (root / "notes.txt").write_text("the user's")  # no mark: never deleted
    (root / "ground_truth" / "twin.json").unlink()
    with pytest.raises(FileExistsError, match="is not a synthetic twin"):
        twin.ensure_twin(root, TwinSpec(seed=1))
    assert (root / "notes.txt").is_file()


def test_a_negative_twin_seed_is_refused_with_the_flag(tmp_path, capsys):
    """Catches numpy's SeedSequence error from deep in generation instead of naming --seed."""
    from bt_tutorial.synthetic import __main__ as module
    from bt_tutorial.synthetic.twin import TwinSpec

    with pytest.raises(ValueError, match=r"seed must be a non-negative integer \(--seed\), got -1"):
        TwinSpec(seed=-1)
    assert module.main(["--out", str(tmp_path / "twin"), "--seed", "-1", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: seed must be a non-negative integer (--seed), got -1."]
    assert not (tmp_path / "twin").exists()


def _true_parts(root, subject, stories, truth):
    """The semantic and low-level parts of every story's signal, normalised as the generator does."""
    feats = {s: load_ground_truth(root, story=s) for s in stories}
    frac = truth["semantic_fraction"]
    parts = {}
    for key, w, share in (("semantic", truth["w_semantic"], frac), ("lowlevel", truth["w_lowlevel"], 1 - frac)):
        proj = {s: feats[s][key] @ w for s in stories}
        stacked = np.vstack(list(proj.values()))
        parts[key] = {s: np.sqrt(share) * (p - stacked.mean(0)) / stacked.std(0) for s, p in proj.items()}
    return parts


def test_each_voxel_mixes_semantic_and_lowlevel_parts_in_its_planted_shares(tiny_twin):
    """Catches shares computed on rows that are not the data's (the silent edges once cut the low-level share ~14x)."""
    ds = LebelDataset(tiny_twin)
    subject = ds.subjects[0]
    truth = load_ground_truth(tiny_twin, subject)
    stories = ds.stories(subject)
    parts = _true_parts(tiny_twin, subject, stories, truth)
    frac = truth["semantic_fraction"]
    auditory = np.flatnonzero(np.isclose(frac, 0.1) & (truth["true_noise_ceiling"] > 0.5))
    low = np.vstack([parts["lowlevel"][s][:, auditory] for s in stories])
    sem = np.vstack([parts["semantic"][s][:, auditory] for s in stories])
    assert np.median(low.var(0) / (low.var(0) + sem.var(0))) == pytest.approx(0.9, abs=0.08)
    Y = np.vstack([ds.load_responses(subject, s)[:, auditory] for s in stories])
    coef = [np.linalg.lstsq(np.column_stack([sem[:, i], low[:, i]]) - np.column_stack([sem[:, i], low[:, i]]).mean(0),
                            Y[:, i] - Y[:, i].mean(), rcond=None)[0] for i in range(len(auditory))]
    sem_coef, low_coef = np.median(coef, axis=0)
    assert low_coef / sem_coef == pytest.approx(1.0, abs=0.35)
