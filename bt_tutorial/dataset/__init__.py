"""The ds003020 dataset: files, stories, audio and transcripts, the TR grid, downloads and ROIs (chapters 1-3).

- :mod:`~bt_tutorial.dataset.reader`: :class:`~bt_tutorial.dataset.reader.LebelDataset`, the reader of the
  ds003020 layout (responses, repeats, stories, split);
- :mod:`~bt_tutorial.dataset.layout`: the derivative(s)/ folder and dataset errors with their fix;
- :mod:`~bt_tutorial.dataset.stories`: the paper's test, validation and training stories;
- :mod:`~bt_tutorial.dataset.stimulus`: audio files (read at 16 kHz) and TextGrid transcripts;
- :mod:`~bt_tutorial.dataset.timing`: the TR grid of a story, the HRF, features onto response rows, delays;
- :mod:`~bt_tutorial.dataset.download` (``python -m bt_tutorial.dataset.download``),
  :mod:`~bt_tutorial.dataset.transfer` and :mod:`~bt_tutorial.dataset.file_formats`: resumable, verified
  downloads of a subject's files;
- :mod:`~bt_tutorial.dataset.rois`: ROI sets and per-ROI means; :mod:`~bt_tutorial.dataset.atlas`,
  :mod:`~bt_tutorial.dataset.roi_files` and :mod:`~bt_tutorial.dataset.roi_build`
  (``python -m bt_tutorial.dataset.roi_build``): Glasser ROI masks of real subjects;
  :mod:`~bt_tutorial.dataset.surface`: the fsaverage5 surface.
"""
