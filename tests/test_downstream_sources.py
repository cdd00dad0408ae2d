"""Where CREMA-D comes from: mirrors tried in order, an exhausted LFS quota named, no network (local fakes)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from bt_tutorial._local_http import QuietHandler, serving
from bt_tutorial.dataset.transfer import DownloadError
from bt_tutorial.downstream import real as R

NAMES = [f"{actor}_{sentence}_{emo}_XX" for actor in (1001, 1002, 1003)
         for sentence, emo in (("DFA", "ANG"), ("ITS", "SAD"))]


class _Handler(QuietHandler):
    """Serves a folder; audio under ``/quota/`` answers 403 like GitHub's LFS media over its quota."""

    def send_head(self):
        if self.path.startswith("/quota/AudioWAV/"):
            self.send_error(403, "This repository is over its data quota")
            return None
        return super().send_head()


@pytest.fixture
def mirrors(tmp_path):
    """Two sources with the same clip list: ``/quota`` (audio refused) and ``/ok`` (audio served)."""
    www = tmp_path / "www"
    for source in ("quota", "ok"):
        folder = www / source
        (folder / "AudioWAV").mkdir(parents=True)
        with open(folder / "SentenceFilenames.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Stimulus_Number", "Filename"])
            writer.writerows([[i + 1, n] for i, n in enumerate(NAMES)])
    t = np.arange(8000) / 16000
    for name in NAMES:
        sf.write(str(www / "ok" / "AudioWAV" / f"{name}.wav"), (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
                 16000)
    with serving(_Handler, directory=www) as url:
        yield url


def test_the_default_source_is_the_maintainers_gitlab_mirror_not_the_lfs_media():
    assert R.CREMA_D_URL == R.CREMA_D_MIRRORS[0]
    assert R.CREMA_D_URL.startswith("https://gitlab.com/cs-cooper-lab/crema-d-mirror/")
    assert "media.githubusercontent.com" in R.CREMA_D_MIRRORS[-1]  # only as a fallback


def test_a_source_over_its_quota_falls_back_to_the_next(mirrors, tmp_path):
    root = R.download_crema_d(tmp_path / "crema", base_url=[f"{mirrors}/quota", f"{mirrors}/ok"], progress=False)
    assert sorted(p.stem for p in (root / "AudioWAV").glob("*.wav")) == sorted(NAMES)
    task = R.load_crema_d(root, progress=False)
    assert len(task) == len(NAMES)


def test_a_refused_download_is_an_error_naming_the_fix_not_a_missing_clip(mirrors, tmp_path):
    with pytest.raises(DownloadError) as info:
        R.download_crema_d(tmp_path / "crema", base_url=f"{mirrors}/quota", progress=False)
    message = str(info.value)
    assert f"- {mirrors}/quota: the server refused {mirrors}/quota/AudioWAV/" in message
    assert "(HTTP 403)" in message and "quota" in message
    assert R.CREMA_D_CLONE in message and "load_crema_d(root=" in message
    assert not list((tmp_path / "crema").rglob("*.wav"))


def test_a_source_with_none_of_the_clips_is_an_error(mirrors, tmp_path):
    with pytest.raises(DownloadError, match="none of the 6 listed clips"):  # every clip answers 404
        R.download_crema_d(tmp_path / "crema", base_url=f"{mirrors}/ok/nothing",
                           list_url=f"{mirrors}/ok/SentenceFilenames.csv", progress=False)


def test_clips_already_on_disk_are_not_downloaded_again(mirrors, tmp_path):
    root = R.download_crema_d(tmp_path / "crema", base_url=f"{mirrors}/ok", actors=[1001], progress=False)
    assert len(list((root / "AudioWAV").glob("*.wav"))) == 2
    # the quota source refuses every clip: nothing is asked of it for clips already there
    R.download_crema_d(root, base_url=f"{mirrors}/quota", actors=[1001], progress=False)


def test_a_complete_download_asks_no_server_again(mirrors, tmp_path, capsys):
    listing = tmp_path / "www" / "ok" / "SentenceFilenames.csv"
    with open(listing, "a", newline="") as f:
        csv.writer(f).writerow([len(NAMES) + 1, "1009_DFA_HAP_XX"])  # listed, not served
    root = R.download_crema_d(tmp_path / "crema", base_url=f"{mirrors}/ok", progress=False)
    assert "1 listed clips are not on the server" in capsys.readouterr().out
    assert (root / "AudioWAV.absent").read_text().split() == ["1009_DFA_HAP_XX"]
    dead = "http://127.0.0.1:9"  # nothing listens: any request would fail
    assert R.download_crema_d(root, base_url=dead, progress=False) == root
    assert len(R.load_crema_d(root, progress=False)) == len(NAMES)
