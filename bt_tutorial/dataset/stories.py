"""The stories of ds003020 that the paper uses, and the train / validation / test split.

The paper (Moussa et al., ICLR 2025) tests on ``wheretheressmoke``, validates on
``stagefright`` and trains on 24 stories: the 27 stories every subject heard, minus
``life``, ``stagefright`` and ``wheretheressmoke``. A full sync of ds003020 has 84
stories, so "every story present" is not the paper's training set: which stories to
train on is a setting (``Config.train_stories``, ``BT_TRAIN_STORIES``):

``"paper"``
    :data:`PAPER_TRAIN_STORIES` (the full profile's default); those missing locally
    are named in a warning, and none present is an error.
``"all"``
    every story present except the test, validation and ``life`` stories (the demo
    profile's default: the synthetic twin has its own stories).
a sequence of names
    exactly those stories, with the same warning for missing ones.
"""

from __future__ import annotations

from bt_tutorial._stack import warn_at_caller

TEST_STORY = "wheretheressmoke"
VALIDATION_STORY = "stagefright"
TEST_STORY_ROWS = 291  # respdict.json of ds003020 3.1.0: 311 TRs, 20 trimmed
EXCLUDED_STORIES = ("life",)  # left out of the paper's training set
# The paper's 24 training stories, sorted: the list ``train_stories_25`` in src/dataset.py of
# github.com/bridge-ai-neuro/brain-tuning (commit b7c325e) names them. The released trainer
# (src/brain_trainer_story.py) indexes its data loaders, built over all 82 other stories of
# datasets/story_lists.npy, by position in that list, so it trains on the first 24 stories of
# story_lists.npy instead: only 7 of them are in this list, and ``life`` is among them. This book
# keeps the intended list. The authors' ridge evaluation (src/eval_utils.py, ``train_stories``)
# trains on this list without myfirstdaywiththeyankees and with stagefright.
PAPER_TRAIN_STORIES = (
    "adollshouse", "adventuresinsayingyes", "alternateithicatom", "avatar", "buck", "exorcism", "eyespy",
    "fromboyhoodtofatherhood", "hangtime", "haveyoumethimyet", "howtodraw", "inamoment", "itsabox", "legacy",
    "myfirstdaywiththeyankees", "naked", "odetostepfather", "sloth", "souls", "swimmingwithastronauts",
    "thatthingonmyarm", "theclosetthatateeverything", "tildeath", "undertheinfluence")
TRAIN_STORY_SETTINGS = ("paper", "all")


def train_story_list(setting) -> tuple | None:
    """The training stories a setting names; None for ``"all"`` (every story present).

    Parameters
    ----------
    setting : {"paper", "all"}, str or sequence of str
        A name of :data:`TRAIN_STORY_SETTINGS`, a comma-separated list of stories, or
        a sequence of stories.

    Returns
    -------
    stories : tuple of str or None
    """
    if isinstance(setting, str):
        key = setting.strip().lower()
        if key == "paper":
            return PAPER_TRAIN_STORIES
        if key == "all":
            return None
        setting = setting.split(",")
    stories = tuple(s.strip() for s in setting if s.strip())
    bad = sorted(set(stories) & {TEST_STORY, VALIDATION_STORY})
    if not stories or bad:
        raise ValueError(f"Training stories must be 'paper', 'all' or a list of story names without the "
                         f"test and validation stories, got {setting!r} (set BT_TRAIN_STORIES).")
    return stories


def split_stories(have, subject: str, setting="all", where: str = "", fix: str = "") -> dict:
    """The paper's split of the stories a subject has.

    Parameters
    ----------
    have : sequence of str
        Stories with responses for ``subject``.
    subject : str
    setting : {"paper", "all"}, str or sequence of str
        Which training stories (see :func:`train_story_list`).
    where, fix : str
        The dataset's folder and how to download missing stories, for the messages.

    Returns
    -------
    split : dict
        ``{"train": [...], "validation": "stagefright", "test": "wheretheressmoke"}``.

    Raises
    ------
    FileNotFoundError
        If the test or validation story, or every training story, is missing.
    """
    have = list(have)
    for story in (TEST_STORY, VALIDATION_STORY):
        if story not in have:
            raise FileNotFoundError(f"Subject {subject} has no responses for {story!r} in {where}, which the "
                                    f"paper's split needs. {fix}")
    wanted = train_story_list(setting)
    if wanted is None:
        skip = {TEST_STORY, VALIDATION_STORY, *EXCLUDED_STORIES}
        return {"train": [s for s in have if s not in skip], "validation": VALIDATION_STORY, "test": TEST_STORY}
    train = [s for s in wanted if s in have]
    missing = [s for s in wanted if s not in have]
    what = "the paper's" if wanted == PAPER_TRAIN_STORIES else "the chosen"
    if not train:
        raise FileNotFoundError(
            f"None of {what} {len(wanted)} training stories has responses for {subject} in {where} (e.g. "
            f"{missing[:3]}). {fix} Or set BT_TRAIN_STORIES=all (Config.train_stories) to train on the "
            "stories present, as for a synthetic twin.")
    if missing:
        warn_at_caller(f"{len(missing)} of {what} {len(wanted)} training stories have no responses for "
                       f"{subject} in {where}: {missing}. Training on the {len(train)} present. {fix}")
    return {"train": train, "validation": VALIDATION_STORY, "test": TEST_STORY}
