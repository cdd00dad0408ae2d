"""Command line: brain-tune a speech model on one subject.

Usage::

    python -m bt_tutorial.brain_tuning --model whisper-tiny.en --subject UTS01 --out runs/tuned
    python -m bt_tutorial.brain_tuning --model facebook/wav2vec2-base --subject UTS03 \\
        --data ~/.cache/bt_tutorial/ds003020 --out /content/drive/MyDrive/bt/w2v --resume

Rerun the same command with ``--resume`` after an interruption: training goes on from the
last checkpoint (written at the end of every epoch and every ``--checkpoint-every-steps``
optimizer steps). On several GPUs, launch the same command with Hugging Face accelerate
(one process per GPU; each optimizer step's samples are split between them, the effective
batch stays)::

    accelerate launch --multi_gpu --num_processes 4 -m bt_tutorial.brain_tuning --model ... --out ...
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from bt_tutorial.brain_tuning.settings import (
    BATCH_ORDERS,
    CONTROLS,
    HEAD_INITS,
    SELECT_BY,
    TUNING_PRESETS,
    TuningConfig,
    profile_tuning_config,
)

CHOICES = {"head_init": HEAD_INITS, "select_by": SELECT_BY, "batch_order": BATCH_ORDERS}
OPTIONAL_INTS = ("patience", "warmup_epochs")  # "none" turns them off


def _int_or_none(text: str):
    return "none" if text.strip().lower() == "none" else int(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bt_tutorial.brain_tuning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model name, hub name or local folder")
    parser.add_argument("--subject", required=True)
    parser.add_argument("--out", required=True, type=Path, help="checkpoints and the tuned backbone")
    parser.add_argument("--data", type=Path, help="dataset root (default: the profile's, BT_PROFILE)")
    parser.add_argument("--control", choices=[c for c in CONTROLS if c], default=None,
                        help="shuffled-fMRI control")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (the previous one if it is damaged)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete a previous run in OUT and start again (with --resume: only a run "
                        "that cannot be resumed)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--preset", choices=sorted(TUNING_PRESETS), default="paper",
                        help="recipe: 'paper' (default: the authors' schedule, eval mode, 30 epochs) or "
                             "'lag-ridge' (window 2 TRs earlier, ridge-fitted head, this book's schedule); "
                             "the flags below override it")
    for f in fields(TuningConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"default: {f.default}")
        elif f.name in OPTIONAL_INTS:
            parser.add_argument(flag, type=_int_or_none, default=None, metavar="N|none",
                                help=f"default: {f.default} (none: off)")
        elif f.name != "control":
            parser.add_argument(flag, type=type(f.default), default=None, choices=CHOICES.get(f.name),
                                help=f"default: {f.default}")
    return parser.parse_args(argv)


def tuning_config(args) -> TuningConfig:
    """The run's settings: the preset at the paper's sizes, then the flags that were given."""
    given = {f.name: getattr(args, f.name) for f in fields(TuningConfig)
             if f.name != "control" and getattr(args, f.name) is not None}
    given.update({name: None for name, value in given.items() if value == "none"})
    return profile_tuning_config("full", args.preset, control=args.control, **given)


def main(argv=None) -> int:
    """Run the command; 0 when a tuned backbone was written, 2 with a one-line message otherwise."""
    from bt_tutorial.command_line import run_command

    args = parse_args(argv)
    resume = " ".join(["python -m bt_tutorial.brain_tuning", *(argv if argv is not None else sys.argv[1:])])
    if "--resume" not in resume:
        resume += " --resume"
    return run_command(lambda: tune_from_args(args), (ValueError, OSError, FloatingPointError),
                       interrupted=f"interrupted: continue from the last checkpoint saved in {args.out} with "
                                   f"`{resume}`")


def tune_from_args(args) -> int:
    """Brain-tune as ``args`` say and print the history; an error if no backbone was written."""
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.brain_tuning.distributed import is_main_process
    from bt_tutorial.brain_tuning.loop import brain_tune
    from bt_tutorial.config import get_config
    from bt_tutorial.dataset.reader import LebelDataset
    from bt_tutorial.profiles import open_dataset

    config = tuning_config(args)
    if args.data:  # a ds003020 folder, read as the full profile reads it
        full = get_config(profile="full")
        dataset = LebelDataset(args.data, strict=True, nan_policy=full.nan_policy,
                               train_stories=full.train_story_setting)
    else:
        dataset = open_dataset(get_config())
    model = load_speech_model(args.model)
    result = brain_tune(model, dataset, args.subject, args.out, config, resume=args.resume,
                        device=args.device, overwrite=args.overwrite)
    if not is_main_process():
        return 0
    for h in result.history:
        print(f"epoch {h['epoch']}: train {h['train_loss']:.4f}, validation {h['val_loss']:.4f} "
              f"(mean r {h.get('val_r', float('nan')):.3f}), "
              f"{h['samples_per_s']:.1f} samples/s")
    if not (result.backbone_dir / "config.json").is_file():
        raise FileNotFoundError(f"no tuned backbone was written to {result.backbone_dir.parent}")
    print(f"best epoch {result.best_epoch}; tuned backbone in {result.backbone_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
