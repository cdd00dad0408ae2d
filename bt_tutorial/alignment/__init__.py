"""Brain alignment: speech models, their features, voxelwise encoding models and noise ceilings (chapters 2-3).

- :mod:`~bt_tutorial.alignment.models`: wav2vec 2.0, HuBERT and Whisper behind one interface;
  :mod:`~bt_tutorial.alignment.whisper_ct2`: the packaged Whisper tiny.en converted to ``transformers``;
- :mod:`~bt_tutorial.alignment.features`: causal features, one vector per window of past audio, cached;
- :mod:`~bt_tutorial.alignment.encoding`: voxelwise ridge with story folds (himalaya), Pearson r;
  :mod:`~bt_tutorial.alignment.encoding_inputs`: checks of the fit's inputs;
- :mod:`~bt_tutorial.alignment.noise_ceiling`: noise ceilings from repeated presentations;
- :mod:`~bt_tutorial.alignment.layers`: a model's features of every layer -> encoding models -> scores
  per layer (:func:`~bt_tutorial.alignment.layers.brain_alignment`).
"""
