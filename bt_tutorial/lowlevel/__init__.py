"""Low-level speech features and how much of a model's brain alignment they explain.

:mod:`~bt_tutorial.lowlevel.phones` holds the phone inventory (39 ARPAbet
phones, 22 articulatory features, within-word diphones and triphones);
:mod:`~bt_tutorial.lowlevel.feature_sets` puts six feature sets (power spectrum,
phonemes, diphones, triphones, articulation, phone and word rates) on a
story's response rows; :mod:`~bt_tutorial.lowlevel.impact` regresses them out
of model features and measures the drop of the encoding model's test r per
ROI, as Oota et al. (ACL 2024) did.
"""

from .feature_sets import (LOWLEVEL_SETS, N_SPECTRUM_BANDS, TOP_DIPHONES, TOP_TRIPHONES, describe_sets,
                           feature_names, lowlevel_features, lowlevel_rows, ngram_vocabularies,
                           spectrum_band_centers, spectrum_course, stack_sets)
from .impact import (LOWLEVEL_ALPHAS, LowLevelImpact, drop_table, lowlevel_impact, percent_drop, remove_lowlevel,
                     set_drop_table)
from .phones import (ARPABET, ARTICULATION, ARTICULATORY_FEATURES, PHONES, phone_ngram_vocabulary,
                     phone_ngrams)

__all__ = [
    "ARPABET", "ARTICULATION", "ARTICULATORY_FEATURES", "LOWLEVEL_ALPHAS", "LOWLEVEL_SETS", "LowLevelImpact",
    "N_SPECTRUM_BANDS", "PHONES", "TOP_DIPHONES", "TOP_TRIPHONES", "describe_sets", "drop_table",
    "feature_names", "lowlevel_features", "lowlevel_impact", "lowlevel_rows", "ngram_vocabularies",
    "percent_drop", "phone_ngram_vocabulary", "phone_ngrams", "remove_lowlevel", "set_drop_table",
    "spectrum_band_centers",
    "spectrum_course", "stack_sets",
]
