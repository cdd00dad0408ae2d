"""Speech synthesis with exact word and phone timings, through eSpeak NG.

eSpeak NG comes with the PyPI package ``espeakng-loader`` (library and voice
data, no system install). Its C API is called with ctypes: a synthesis callback
receives the samples and, because phoneme events are enabled at initialisation,
one event per word and per phoneme with its sample position. That gives the
true timing of every word and phone, which a forced aligner only estimates.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

import numpy as np

from bt_tutorial.synthetic.phonemes import is_pause, to_arpabet

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_EVENT_WORD, _EVENT_END, _EVENT_PHONEME = 1, 5, 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                             ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Utterance:
    """Synthesized speech and its exact timing.

    Attributes
    ----------
    waveform : ndarray, shape (n_samples,), float32 in [-1, 1]
    sample_rate : int
    words : list of (str, float, float)
        Word, start and end in seconds.
    phones : list of (str, float, float)
        ARPAbet phone with stress digit, start and end in seconds.
    """

    waveform: np.ndarray
    sample_rate: int
    words: list
    phones: list

    @property
    def duration(self) -> float:
        return len(self.waveform) / self.sample_rate


class _Engine:
    """A freshly loaded eSpeak NG library, for one synthesis.

    The library keeps internal state between calls (and across
    ``espeak_Terminate``), so the same text comes out with sub-millisecond
    differences depending on what was spoken before. Loading it anew with
    ``dlopen`` and unloading it with ``dlclose`` around every synthesis makes
    the output a function of the arguments only (about 4 ms per call); the
    noise of breathy voices comes from libc's ``rand()``, seeded here.
    """

    def __enter__(self):
        import _ctypes

        import espeakng_loader

        self._dlclose = _ctypes.dlclose
        ctypes.CDLL(None).srand(0)  # breathy voices draw noise from libc's rand()
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        path = espeakng_loader.get_data_path().encode()
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, path, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise with data at {path!r}.")
        self._chunks, self._events = [], []
        self._callback = _CALLBACK(self._collect)  # keep a reference: C holds it
        self.lib.espeak_SetSynthCallback(self._callback)
        return self

    def __exit__(self, *exc):
        self.lib.espeak_Terminate()
        self._dlclose(self.lib._handle)

    def _collect(self, wav, n_samples, events):
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != 0:
            ev = events[i]
            label = bytes(ev.id.string).split(b"\0")[0].decode() if ev.type == _EVENT_PHONEME else ""
            self._events.append((ev.type, ev.text_position, ev.length, ev.sample, label))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}.")
        for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        raw = text.encode("utf-8")
        self.lib.espeak_Synth(raw, len(raw) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        wav = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return wav, list(self._events)


def synthesize(text: str, voice: str = "en-us", rate: int = 170, pitch: int = 50,
               pitch_range: int = 50) -> Utterance:
    """Speak ``text`` with eSpeak NG and return audio with word and phone timings.

    Parameters
    ----------
    text : str
        Plain English text (ASCII letters and punctuation).
    voice : str
        eSpeak voice name, with an optional variant (``"en-us+f2"``).
    rate : int
        Words per minute (80-450).
    pitch, pitch_range : int
        Base pitch and its range, 0-100.

    Returns
    -------
    utterance : Utterance
    """
    with _Engine() as engine:
        wav, events = engine.synthesize(text, voice, rate, pitch, pitch_range)
        sr = engine.sample_rate
    words, phones = _timings(text, events, len(wav))
    scale = 1.0 / sr
    return Utterance(
        waveform=(wav.astype(np.float32) / 32768.0),
        sample_rate=sr,
        words=[(w, s * scale, e * scale) for w, s, e in words],
        phones=[(p, s * scale, e * scale) for p, s, e in phones],
    )


def _timings(text: str, events: list, n_samples: int) -> tuple:
    """Turn eSpeak events (in samples) into word and phone intervals."""
    marks = [ev for ev in events if ev[0] in (_EVENT_WORD, _EVENT_PHONEME)]
    bounds = [ev[3] for ev in marks[1:]] + [n_samples]
    words, phones, current = [], [], None
    for (kind, pos, length, start, label), end in zip(marks, bounds):
        if kind == _EVENT_WORD:
            current = [re.sub(r"[^a-z']", "", text[pos - 1:pos - 1 + length].lower()), None, None]
            words.append(current)
            continue
        if is_pause(label):
            continue
        arpa = to_arpabet(label)
        if not arpa or current is None:
            continue
        step = (end - start) / len(arpa)
        for k, phone in enumerate(arpa):
            phones.append((phone, start + k * step, start + (k + 1) * step))
        current[1] = start if current[1] is None else current[1]
        current[2] = end
    return [tuple(w) for w in words if w[1] is not None and w[0]], phones
