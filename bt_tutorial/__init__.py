"""bt_tutorial: brain-tuning of speech models, as a tested tutorial package.

Modules follow the data as it flows: :mod:`bt_tutorial.config` (profiles and the
data home), :mod:`bt_tutorial.data` (the ds003020 reader), :mod:`bt_tutorial.timing`
(the TR grid), :mod:`bt_tutorial.synthetic` (the offline twin of the dataset) and
:mod:`bt_tutorial.download` (the real dataset).
"""

__version__ = "0.1.0"
