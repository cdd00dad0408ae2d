"""bt_tutorial: brain-tuning of speech models, as a tested tutorial package.

The modules, in the order the data flow through them (audio -> features -> TR grid
-> ridge -> scores -> ROIs -> figures; brain-tuning feeds a tuned model back in):

Settings and data
    ``_stack``         warnings that name the user's line, however deep they are raised
    ``config``         profiles (``demo`` / ``full``), the data home, feature window settings
    ``stimulus``       audio files (read at 16 kHz) and TextGrid transcripts
    ``timing``         the TR grid of a story, the HRF, resampling features onto response rows
    ``data``           the reader of the ds003020 layout (responses, repeats, stories, split)
    ``layout``         the derivative(s)/ folder, dataset errors with their fix, a twin's ground truth
    ``stories``        the paper's test, validation and 24 training stories, the split
    ``download``       ds003020 files for a subject and N stories; ``python -m bt_tutorial.download``
    ``transfer``       resumable, verified HTTPS downloads of single files
    ``file_formats``   what a complete file of each format starts with, MD5 of S3 objects
    ``profiles``       what each profile plugs in: the dataset, ROI masks, downstream tasks
    ``synthetic``      the offline twin of ds003020 and the offline downstream tasks
    ``command_line``   what every ``python -m bt_tutorial.<command>`` does with an expected error
Speech models and their features
    ``models``         wav2vec 2.0, HuBERT and Whisper behind one interface
    ``whisper_ct2``    the packaged Whisper tiny.en converted to ``transformers``
    ``features``       causal features: one vector per window of past audio, cached
Measuring alignment
    ``encoding``       voxelwise ridge with story folds (himalaya), Pearson r on the test story
    ``encoding_inputs`` checks of the fit's inputs: shapes, finite values, alphas, voxels
    ``alignment``      a model's features of every layer -> encoding models -> scores per layer
    ``noise_ceiling``  noise ceilings from repeated presentations, voxel selection
    ``surface``        the fsaverage5 surface for brain maps
    ``rois``           ROI sets, per-ROI summaries with intervals, paired comparisons
    ``atlas``          Glasser ROI masks of real subjects, built once per subject
    ``roi_build``      ``python -m bt_tutorial.roi_build``: downloads the inputs, builds the masks
    ``roi_files``      the ROI build's input files (annotations, surfaces, transforms) and their readers
Brain-tuning
    ``brain_tuning``   settings, training samples and controls, the tuned model, the loop
    ``tune``           ``python -m bt_tutorial.tune``, the command line of brain-tuning
Comparing models (chapters 5-7)
    ``comparison``     pretrained vs brain-tuned vs shuffled control, ROI tables
    ``effects``        the paper's three effects and one verdict rule
    ``recovery``       how well each layer recovers the twin's true drives
    ``lowlevel``       low-level speech features and how much alignment they explain
    ``downstream``     downstream tasks and linear probes on frozen features
    ``closing``        the effects chapters 5-7 keep, side by side (chapter 8)
Figures (each function returns the figure)
    ``plotting``         data, alignment, noise ceilings, training histories, brain maps
    ``plotting_models``  ROI profiles across layers, paired differences, low-level drops
    ``plotting_tuning``  the tuning window against the HRF, the recipe ablation, recovery
"""

__version__ = "0.1.0"
