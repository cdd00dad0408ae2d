"""bt_tutorial: brain-tuning of speech models, as a tested tutorial package.

One subpackage per stage of the book, in the order the data flow through them (audio ->
features -> TR grid -> delays -> ridge -> predictions -> scores -> ROI summaries -> figures;
brain-tuning feeds a tuned model back into the same path). Importing a subpackage loads
none of its modules: import the module that holds a name.

Settings
    ``config``         profiles (``demo`` / ``full``), the data home, feature window settings
    ``profiles``       what each profile plugs in: the dataset, ROI masks, downstream tasks
    ``command_line``   what every ``python -m bt_tutorial...`` command does with an expected error
    ``_stack``         warnings that name the user's line, however deep they are raised
    ``_local_http``    a local HTTP server: the mirrors that tests, benchmarks and tools download from
    ``stats``          bootstraps, permutation tests, t-intervals and the one verdict rule of every table
``dataset`` (chapters 1-3)
    ``reader``, ``layout``, ``stories``: the ds003020 layout, its errors, the paper's split;
    ``stimulus``, ``timing``: audio, transcripts, the TR grid and the HRF;
    ``download``, ``transfer``, ``file_formats``: verified downloads of a subject's files;
    ``rois``, ``atlas``, ``roi_files``, ``roi_build``, ``surface``: ROI masks and the cortical surface
``alignment`` (chapters 2-3)
    ``models``, ``whisper_ct2``: speech models behind one interface; ``features``: causal features;
    ``encoding``, ``encoding_inputs``: voxelwise ridge; ``noise_ceiling``; ``layers``: scores per layer
``brain_tuning`` (chapter 4)
    settings, training samples and controls, the tuned model, the loop; ``python -m bt_tutorial.brain_tuning``
``comparison`` (chapters 5-8)
    ``roi_tables``: the three models per ROI; ``effects``: the paper's three effects; ``closing``: chapter 8; ``workflow``:
    chapters 4-7 in one call
``lowlevel`` (chapter 6)
    low-level speech features and how much alignment they explain
``downstream`` (chapter 7)
    downstream tasks and linear probes on frozen features
``synthetic``
    the offline twin of ds003020, its ground truth (``truth``), how well models recover it
    (``recovery``), and the offline downstream tasks
``plotting``
    every figure of the book; each function returns the figure
"""

__version__ = "0.1.0"
