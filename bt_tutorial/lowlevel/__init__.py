"""Low-level speech features and how much of a model's brain alignment they explain.

:mod:`~bt_tutorial.lowlevel.phones` holds the phone inventory (39 ARPAbet
phones, 22 articulatory features, within-word diphones and triphones);
:mod:`~bt_tutorial.lowlevel.feature_sets` puts six feature sets (power spectrum,
phonemes, diphones, triphones, articulation, phone and word rates) on a
story's response rows; :mod:`~bt_tutorial.lowlevel.impact` regresses them out
of model features and measures the drop of the encoding model's test r per
ROI, as Oota et al. (ACL 2024) did.
"""
