"""Real LeBel TextGrids: rounding-error overlaps, byte-order marks, UTF-16, short and chronological formats.

Each case is a small hand-written file holding the same two tiers, so every reader
must give the same words and phones.
"""

import codecs
import os

import numpy as np
import pytest

from bt_tutorial.dataset.file_formats import content_problem
from bt_tutorial.dataset.stimulus import StimulusFileError, read_textgrid

LONG = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "phone"
        xmin = 0
        xmax = 1.5
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.3
            text = "HH"
        intervals [2]:
            xmin = 0.3
            xmax = 0.6
            text = "AH0"
        intervals [3]:
            xmin = 0.6
            xmax = 1.0
            text = "L"
        intervals [4]:
            xmin = 1.0
            xmax = 1.2
            text = "OW1"
        intervals [5]:
            xmin = 1.2
            xmax = 1.5
            text = "sp"
    item [2]:
        class = "IntervalTier"
        name = "word"
        xmin = 0
        xmax = 1.5
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 1.2
            text = "HELLO"
        intervals [2]:
            xmin = 1.2
            xmax = 1.5
            text = "sp"
"""

SHORT = """File type = "ooTextFile short"
"TextGrid"

0
1.5
<exists>
2
"IntervalTier"
"phone"
0
1.5
5
0
0.3
"HH"
0.3
0.6
"AH0"
0.6
1.0
"L"
1.0
1.2
"OW1"
1.2
1.5
"sp"
"IntervalTier"
"word"
0
1.5
2
0
1.2
"HELLO"
1.2
1.5
"sp"
"""

CHRONOLOGICAL = """"Praat chronological TextGrid text file"
0 1.5   ! Time domain.
2   ! Number of tiers.
"IntervalTier" "phone" 0 1.5
"IntervalTier" "word" 0 1.5

! phone:
1 0 0.3
"HH"

! word:
2 0 1.2
"HELLO"

1 0.3 0.6
"AH0"

1 0.6 1.0
"L"

1 1.0 1.2
"OW1"

1 1.2 1.5
"sp"

2 1.2 1.5
"sp"
"""

WORDS, PHONES = ("hello",), ("HH", "AH", "L", "OW")


def check(path):
    words, phones = read_textgrid(path)
    assert words.labels == WORDS and phones.labels == PHONES
    np.testing.assert_allclose(phones.starts, [0, 0.3, 0.6, 1.0])
    np.testing.assert_allclose(phones.ends, [0.3, 0.6, 1.0, 1.2])
    np.testing.assert_allclose([words.starts[0], words.ends[0]], [0, 1.2])
    assert content_problem(path) is None  # the downloader accepts the file too


@pytest.mark.parametrize("text", [LONG, SHORT, CHRONOLOGICAL], ids=["long", "short", "chronological"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-bom", "utf-16", "utf-16-be", "crlf", "utf-8-bom-crlf",
                                      "utf-16-crlf"])
def test_formats_and_encodings_give_the_same_transcript(tmp_path, text, encoding):
    path = tmp_path / "story.TextGrid"
    if encoding.endswith("crlf"):
        text, encoding = text.replace("\n", "\r\n"), encoding.removesuffix("-crlf").removesuffix("crlf") or "utf-8"
    if encoding == "utf-8-bom":
        data = codecs.BOM_UTF8 + text.encode()
    else:
        data = text.encode(encoding)  # "utf-16" writes a byte-order mark, "utf-16-be" none
    path.write_bytes(data)
    check(path)


def test_chronological_format_with_a_quote_in_a_label_and_no_final_newline(tmp_path):
    text = CHRONOLOGICAL.replace('"HELLO"', '"HE""LLO"').rstrip("\n")
    path = tmp_path / "story.TextGrid"
    path.write_text(text)
    words, _ = read_textgrid(path)
    assert words.labels == ('he"llo',)


@pytest.mark.parametrize("text", [LONG, SHORT, CHRONOLOGICAL], ids=["long", "short", "chronological"])
def test_overlap_by_a_rounding_error_is_repaired(tmp_path, text):
    """praatio refuses such files (as for wheretheressmoke); the later phone starts where the earlier ends."""
    if text is CHRONOLOGICAL:
        text = text.replace("1 0.3 0.6", "1 0.2995 0.6")
    else:
        text = text.replace("0.3\n", "0.2995\n", 2).replace("0.2995\n", "0.3\n", 1)
    assert "0.2995" in text
    path = tmp_path / "story.TextGrid"
    path.write_text(text)
    check(path)


def test_overlap_beyond_a_rounding_error_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "story.TextGrid"
    path.write_text(LONG.replace("            xmin = 0.6\n", "            xmin = 0.5\n", 1))
    with pytest.raises(StimulusFileError, match=r"story.TextGrid: in tier 'phone'.*overlap by 0.1 s"):
        read_textgrid(path, bad_phones="raise")
    words, phones = read_textgrid(path, overlap_tolerance=0.2)
    assert phones.starts[2] == pytest.approx(0.6) and phones.source == "textgrid"


BROKEN_PHONE_TIERS = {
    "overlap": ("            xmin = 0.6\n", "            xmin = 0.5\n", r"overlap by 0.1 s"),
    "backwards": ("            xmax = 1.0\n            text = \"L\"", "            xmax = 0.55\n            text = \"L\"",
                  "end before they start"),
    "empty": ('text = "HH"', 'text = ""', None),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PHONE_TIERS))
def test_a_broken_phone_tier_keeps_the_words_and_warns_once(tmp_path, case):
    """Catches a phone tier that stops the transcript (wheretheressmoke's is reported unusable)."""
    old, new, problem = BROKEN_PHONE_TIERS[case]
    text = LONG.replace(old, new, 1)
    if case == "empty":
        for label in ("AH0", "L", "OW1"):
            text = text.replace(f'text = "{label}"', 'text = ""')
    path = tmp_path / "story.TextGrid"
    path.write_text(text)
    with pytest.warns(UserWarning) as caught:
        words, phones = read_textgrid(path)
    assert len(caught) == 1 and caught[0].filename == __file__  # the warning names the reader's call
    message = str(caught[0].message)
    assert "story.TextGrid" in message and "'phone'" in message and "words are kept" in message
    if problem:
        assert __import__("re").search(problem, message), message
    assert words.labels == WORDS  # the words are untouched
    assert phones.source == "dictionary" and phones.labels == PHONES  # CMU: hello = HH AH0 L OW1
    np.testing.assert_allclose(phones.starts, [0, 0.3, 0.6, 0.9])  # the word's 1.2 s split evenly
    np.testing.assert_allclose(phones.ends, [0.3, 0.6, 0.9, 1.2])
    with pytest.warns(UserWarning, match="has no phones"):
        _, dropped = read_textgrid(path, bad_phones="drop")
    assert len(dropped) == 0 and dropped.source == "none"
    with pytest.raises(StimulusFileError, match="story.TextGrid"):
        read_textgrid(path, bad_phones="raise")


def test_dictionary_phones_skip_unknown_words():
    from bt_tutorial.dataset.stimulus import Intervals, dictionary_phones

    words = Intervals(("hello", "qzxv", "world"), np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 2.8]))
    phones = dictionary_phones(words)
    assert phones.labels == ("HH", "AH", "L", "OW", "W", "ER", "L", "D")
    assert phones.starts[4] == 2.0 and phones.ends[-1] == pytest.approx(2.8)


def test_a_broken_word_tier_is_still_an_error(tmp_path):
    path = tmp_path / "story.TextGrid"
    path.write_text(CHRONOLOGICAL.replace('2 0 1.2\n"HELLO"', '2 1.0 0.5\n"HELLO"'))
    with pytest.raises(StimulusFileError, match="'word'.*end before they start"):
        read_textgrid(path)


def test_damaged_chronological_file_is_a_clear_error(tmp_path):
    path = tmp_path / "story.TextGrid"
    path.write_text(CHRONOLOGICAL.replace("2   ! Number of tiers.", "3   ! Number of tiers."))
    with pytest.raises(StimulusFileError, match=r"story.TextGrid cannot be parsed as a TextGrid \((?!NoneType)\w+: "):
        read_textgrid(path)


def test_chronological_point_tiers_are_stepped_over():
    """Catches a point (TextTier) entry read with the wrong fields or length, which shifts every entry
    after it, and a tier header checked with `and` instead of `or`."""
    from bt_tutorial.dataset.stimulus import _parse_chronological

    text = CHRONOLOGICAL.replace("2   ! Number of tiers.", "3   ! Number of tiers.").replace(
        '"IntervalTier" "word" 0 1.5', '"IntervalTier" "word" 0 1.5\n"TextTier" "events" 0 1.5').replace(
        '2 0 1.2\n"HELLO"', '3 0.7\n"click"\n\n2 0 1.2\n"HELLO"\n\n3 1.1\n"beep"')
    tiers = {name: (klass, entries) for name, klass, entries in _parse_chronological(text)}
    assert tiers["events"] == ("TextTier", [(0.7, "click"), (1.1, "beep")])
    assert tiers["word"] == ("IntervalTier", [(0.0, 1.2, "HELLO"), (1.2, 1.5, "sp")])
    assert [e[2] for e in tiers["phone"][1]] == ["HH", "AH0", "L", "OW1", "sp"]
    with pytest.raises(ValueError, match="tier header 7 is not '\"IntervalTier\" \"name\" xmin xmax'"):
        _parse_chronological(CHRONOLOGICAL.replace('"IntervalTier" "word" 0 1.5', '"IntervalTier" 2 0 1.5'))


def test_intervals_between_keep_those_starting_in_the_half_open_span():
    """Catches an interval starting exactly at t1 kept, one starting at t0 dropped, or the source lost."""
    from bt_tutorial.dataset.stimulus import Intervals

    iv = Intervals(("a", "b", "c", "d"), np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]), "tier")
    part = iv.between(1.0, 3.0)
    assert part.labels == ("b", "c") and part.starts.tolist() == [1.0, 2.0] and part.ends.tolist() == [2.0, 3.0]
    assert part.source == "tier" and iv.between(5.0, 9.0).labels == ()


def test_dictionary_phones_of_quoted_capitalised_and_unknown_words():
    """Catches a lookup that misses "'Hello'" (quotes and capitals) or "Comin'" (only in the dictionary
    with its apostrophe), or an unknown word given phones."""
    from bt_tutorial.dataset.stimulus import Intervals, dictionary_phones

    words = Intervals(("'Hello'", "Comin'", "zzzqx"), np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    phones = dictionary_phones(words)
    assert phones.labels == ("HH", "AH", "L", "OW", "K", "AH", "M", "IH", "N") and phones.source == "dictionary"
    np.testing.assert_allclose(phones.starts[:5], [0.0, 0.25, 0.5, 0.75, 1.0])
    assert phones.ends[-1] == 2.0


def test_read_audio_records_its_source_and_accepts_the_edges(tmp_path):
    """Catches a one-sample file refused, an amplitude of exactly the limit refused, the source rate or
    path not recorded, and the default rate changed."""
    import soundfile as sf

    from bt_tutorial.dataset.stimulus import MAX_FLOAT_AMPLITUDE, read_audio

    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.5], np.float32), 16000, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.waveform.tolist() == [0.5] and audio.sample_rate == 16000 and audio.source_rate == 16000
    assert audio.path == path
    loud = tmp_path / "loud.wav"
    sf.write(loud, np.array([MAX_FLOAT_AMPLITUDE, 0.0], np.float32), 22050, subtype="FLOAT")
    assert read_audio(loud, 22050).source_rate == 22050
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(StimulusFileError, match="empty.wav is a sound file with no samples"):
        read_audio(empty)


def test_fix_overlaps_boundaries():
    """Catches touching intervals taken for overlaps, an overlap of exactly the tolerance refused,
    a zero-length interval taken as backwards, one that ends where the previous ends kept, and the
    report counting or quoting the wrong intervals."""
    from bt_tutorial.dataset.stimulus import _fix_overlaps

    touching = [(0.0, 1.0, "a"), (1.0, 2.0, "b"), (2.0, 2.0, "c")]
    assert _fix_overlaps(touching, 0.01, "p", "t") == touching
    assert _fix_overlaps([(0.0, 1.25, "a"), (1.0, 2.0, "b")], 0.25, "p", "t")[1] == (1.25, 2.0, "b")
    with pytest.raises(StimulusFileError, match=r"1 overlaps .*\(0.0, 2.0, 'a'\) and \(1.0, 2.0, 'b'\) overlap by 1 s"):
        _fix_overlaps([(0.0, 2.0, "a"), (1.0, 2.0, "b")], 5.0, "p", "t")  # b would vanish: not a rounding error
    many = [(float(i), float(i) + 1.5, str(i)) for i in range(6)]
    with pytest.raises(StimulusFileError, match=r"5 overlaps") as caught:
        _fix_overlaps(many, 0.1, "p", "t")
    assert str(caught.value).count("overlap by") == 3  # the first three, each with the interval before it
    assert "(0.0, 1.5, '0') and (1.0, 2.5, '1') overlap by 0.5 s" in str(caught.value)
    with pytest.raises(StimulusFileError, match=r"4 intervals end before they start") as caught:
        _fix_overlaps([(float(i), float(i) - 0.5, str(i)) for i in range(4)], 0.1, "p", "t")
    assert "'2'" in str(caught.value) and "'3'" not in str(caught.value)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-8", "latin-1"])
def test_decode_text_without_a_byte_order_mark(encoding):
    """Catches UTF-16 without a BOM read in the wrong byte order, or Latin-1 not the last resort."""
    from bt_tutorial.dataset.stimulus import decode_text

    text = 'File type = "ooTextFile"\nxmin = 0 \u00e9' if encoding != "utf-8" else "x\u00e9\u4e2d"
    assert decode_text(text.encode(encoding)) == text
    assert decode_text(b"x") == "x"  # one byte: not UTF-16
    assert decode_text("y".encode("utf-16-le")) == "y"  # two bytes can be one UTF-16 character


# ------------------------------------------------------------------ tiers found, named and refused
def _long(tiers, xmax=1.5):
    """A long-format TextGrid of ``tiers``: [(name, class, [(start, end, label)] or [(time, label)])]."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax}",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for k, (name, klass, entries) in enumerate(tiers, 1):
        lines += [f"    item [{k}]:", f'        class = "{klass}"', f'        name = "{name}"', "        xmin = 0",
                  f"        xmax = {xmax}"]
        kind = "intervals" if klass == "IntervalTier" else "points"
        lines.append(f"        {kind}: size = {len(entries)}")
        for j, entry in enumerate(entries, 1):
            lines.append(f"        {kind} [{j}]:")
            if klass == "IntervalTier":
                lines += [f"            xmin = {entry[0]}", f"            xmax = {entry[1]}", f'            text = "{entry[2]}"']
            else:
                lines += [f"            number = {entry[0]}", f'            mark = "{entry[1]}"']
    return "\n".join(lines) + "\n"


HELLO_PHONES = [(0, 0.3, "HH"), (0.3, 0.6, "AH0"), (0.6, 1.0, "L"), (1.0, 1.2, "OW1")]


def _write(tmp_path, text, name="story.TextGrid"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_duplicate_tier_names_are_numbered_from_two(tmp_path):
    """Catches a duplicate tier that replaces the first one or is numbered wrongly."""
    from bt_tutorial.dataset.stimulus import _parse_textgrid

    tier = ("x", "IntervalTier", [(0, 1.5, "a")])
    tiers = _parse_textgrid(_write(tmp_path, _long([tier, tier, tier])))
    assert list(tiers) == ["x", "x_2", "x_3"]


def test_tiers_that_cannot_be_told_apart_are_errors_naming_the_file(tmp_path):
    """Catches a missing tier read as an IndexError, a point tier read as intervals, and the messages
    naming the wrong tier class or the wrong expected names."""
    lone = _write(tmp_path, _long([("phone", "IntervalTier", HELLO_PHONES)]), "lone.TextGrid")
    with pytest.raises(StimulusFileError, match=r"lone.TextGrid has tiers \['phone'\]; expected a phone tier"):
        read_textgrid(lone)
    points = _write(tmp_path, _long([("phone", "TextTier", [(0.1, "HH")]), ("word", "IntervalTier", [(0, 1.2, "hello")])]),
                    "points.TextGrid")
    with pytest.raises(StimulusFileError, match=r"points.TextGrid: .*\('phone' is a TextTier\)"):
        read_textgrid(points)
    swapped = _write(tmp_path, _long([("a", "IntervalTier", [(0, 1.2, "hello")]), ("b", "IntervalTier", HELLO_PHONES)]),
                     "swapped.TextGrid")
    with pytest.raises(StimulusFileError, match=r"swapped.TextGrid: tiers \['a', 'b'\] are not named 'phone' and 'word'"):
        read_textgrid(swapped)
    with pytest.raises(ValueError, match="bad_phones must be one of"):
        read_textgrid(swapped, bad_phones="guess")


def test_tiers_by_position_with_as_many_phones_as_words(tmp_path):
    """Catches a one-phone-per-word transcript refused as swapped (only fewer phones than words is)."""
    path = _write(tmp_path, _long([("a", "IntervalTier", [(0, 0.5, "AH0"), (0.5, 1.0, "B")]),
                                   ("b", "IntervalTier", [(0, 0.5, "a"), (0.5, 1.0, "b")])]))
    words, phones = read_textgrid(path)
    assert words.labels == ("a", "b") and phones.labels == ("AH", "B")


def test_word_tier_overlap_is_repaired_and_an_empty_word_tier_is_named(tmp_path):
    """Catches the word tier read without the overlap tolerance, and the no-words error without its text."""
    words_ = [(0, 1.2, "HELLO"), (1.1995, 1.5, "{LG}"), (1.1995, 1.5, "world")]
    path = _write(tmp_path, _long([("phone", "IntervalTier", HELLO_PHONES),
                                   ("word", "IntervalTier", [words_[0], words_[2]])]))
    words, _ = read_textgrid(path)
    assert words.labels == ("hello", "world") and words.starts[1] == 1.2
    braced = _write(tmp_path, _long([("phone", "IntervalTier", HELLO_PHONES),
                                     ("word", "IntervalTier", words_[:2])]), "braced.TextGrid")
    assert read_textgrid(braced)[0].labels == ("hello",)  # "{LG}" is the non-speech label "lg"
    empty = _write(tmp_path, _long([("phone", "IntervalTier", HELLO_PHONES), ("word", "IntervalTier", [(0, 1.5, "sp")])]),
                   "empty.TextGrid")
    with pytest.raises(StimulusFileError, match=r"empty.TextGrid: the word tier 'word' has no words\."):
        read_textgrid(empty)
    broken = _write(tmp_path, _long([("phone", "IntervalTier", HELLO_PHONES),
                                      ("word", "IntervalTier", [(1.0, 0.5, "hello")])]), "broken.TextGrid")
    with pytest.raises(StimulusFileError, match=r"broken.TextGrid.*'word'"):
        read_textgrid(broken)


def test_replaced_phone_tiers_say_what_replaced_them_at_the_callers_line(tmp_path):
    """Catches the warning pointing inside the package (LebelDataset.load_transcript calls
    read_textgrid: the warning names the line that called it), the dictionary count left out of the
    message, and a dropped tier that is not an empty pair of time arrays."""
    path = _write(tmp_path, _long([("phone", "IntervalTier", [(0, 1.5, "sp")]),
                                   ("word", "IntervalTier", [(0, 0.6, "hello"), (0.6, 1.2, "world")])]))

    def load_transcript():  # stands for the dataset method between the user and the reader
        return read_textgrid(path)

    with pytest.warns(UserWarning, match="its 8 phones come from the CMU pronouncing dictionary") as caught:
        _, phones = load_transcript()
    assert caught[0].filename == __file__ or "MUTANT_UNDER_TEST" in os.environ  # mutmut adds frames
    assert len(phones) == 8
    np.testing.assert_allclose(phones.ends[:4], [0.15, 0.3, 0.45, 0.6])  # every word's phones, not the last's
    np.testing.assert_allclose(phones.starts[4:], [0.6, 0.75, 0.9, 1.05])
    with pytest.warns(UserWarning, match="it has no phones"):
        _, dropped = read_textgrid(path, bad_phones="drop")
    assert dropped.starts.shape == dropped.ends.shape == (0,)


def test_file_edge_cases_read_or_name_their_cause(tmp_path):
    """Catches a chronological file with leading blank lines read as another format, a short-format
    file without its final newline refused, and an unreadable path reported without its cause."""
    check(_write(tmp_path, "\n \n" + CHRONOLOGICAL, "chrono.TextGrid"))
    check(_write(tmp_path, SHORT.rstrip("\n"), "short.TextGrid"))
    folder = tmp_path / "folder.TextGrid"
    folder.mkdir()
    with pytest.raises(StimulusFileError, match=r"folder.TextGrid cannot be read as text \(IsADirectoryError"):
        read_textgrid(folder)
