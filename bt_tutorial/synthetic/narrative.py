"""Procedurally generated English stories whose topic changes every few sentences.

Each story follows a small cast through a sequence of topics (the sea, a
kitchen, a hospital ...). Sentences come from templates filled with the topic's
words, so the semantic content of the story varies slowly, as in the natural
stories of ds003020, and the topic of every sentence is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOPICS = {
    "sea": dict(
        roles=["fisherman", "captain", "sailor", "diver"],
        places=["harbor", "beach", "lighthouse", "deck"],
        nouns=["boat", "net", "wave", "anchor", "seagull", "rope", "shell"],
        adjs=["salty", "heavy", "calm", "stormy", "wet"],
        verbs=[("pulled", "pull"), ("painted", "paint"), ("fixed", "fix"), ("watched", "watch")],
    ),
    "kitchen": dict(
        roles=["cook", "baker", "waiter", "grandmother"],
        places=["kitchen", "bakery", "market", "restaurant"],
        nouns=["bread", "soup", "oven", "onion", "spoon", "cake", "pepper"],
        adjs=["warm", "spicy", "sweet", "fresh", "burnt"],
        verbs=[("tasted", "taste"), ("stirred", "stir"), ("baked", "bake"), ("sliced", "slice")],
    ),
    "hospital": dict(
        roles=["doctor", "nurse", "patient", "surgeon"],
        places=["hospital", "clinic", "waiting room", "pharmacy"],
        nouns=["medicine", "bandage", "fever", "needle", "bed", "heartbeat"],
        adjs=["pale", "tired", "careful", "sterile", "quiet"],
        verbs=[("examined", "examine"), ("treated", "treat"), ("measured", "measure"), ("wrapped", "wrap")],
    ),
    "forest": dict(
        roles=["hunter", "ranger", "hiker", "woodcutter"],
        places=["forest", "river", "cabin", "valley"],
        nouns=["bear", "deer", "pine tree", "mushroom", "owl", "campfire"],
        adjs=["green", "wild", "dark", "muddy", "ancient"],
        verbs=[("followed", "follow"), ("climbed", "climb"), ("chopped", "chop"), ("spotted", "spot")],
    ),
    "city": dict(
        roles=["driver", "police officer", "shopkeeper", "taxi driver"],
        places=["street", "subway", "bridge", "parking lot"],
        nouns=["traffic", "bus", "siren", "crowd", "building", "umbrella"],
        adjs=["noisy", "crowded", "busy", "bright", "grey"],
        verbs=[("crossed", "cross"), ("parked", "park"), ("honked at", "honk at"), ("passed", "pass")],
    ),
    "music": dict(
        roles=["singer", "drummer", "violinist", "conductor"],
        places=["concert hall", "studio", "stage", "church"],
        nouns=["guitar", "piano", "song", "melody", "drum", "choir"],
        adjs=["loud", "gentle", "beautiful", "sad", "lively"],
        verbs=[("played", "play"), ("tuned", "tune"), ("practiced", "practice"), ("recorded", "record")],
    ),
    "school": dict(
        roles=["teacher", "student", "principal", "librarian"],
        places=["classroom", "library", "school", "playground"],
        nouns=["homework", "book", "exam", "pencil", "lesson", "chalkboard"],
        adjs=["difficult", "boring", "clever", "strict", "curious"],
        verbs=[("studied", "study"), ("graded", "grade"), ("read", "read"), ("explained", "explain")],
    ),
    "weather": dict(
        roles=["farmer", "pilot", "forecaster", "neighbor"],
        places=["field", "airport", "hill", "porch"],
        nouns=["storm", "thunder", "rain", "snow", "cloud", "lightning"],
        adjs=["cold", "windy", "freezing", "humid", "gloomy"],
        verbs=[("feared", "fear"), ("predicted", "predict"), ("watched", "watch"), ("escaped", "escape")],
    ),
    "sports": dict(
        roles=["coach", "player", "referee", "runner"],
        places=["stadium", "gym", "track", "court"],
        nouns=["ball", "goal", "team", "whistle", "trophy", "race"],
        adjs=["fast", "strong", "proud", "exhausted", "competitive"],
        verbs=[("kicked", "kick"), ("won", "win"), ("threw", "throw"), ("lost", "lose")],
    ),
    "space": dict(
        roles=["astronaut", "scientist", "engineer", "astronomer"],
        places=["observatory", "launch pad", "space station", "laboratory"],
        nouns=["rocket", "planet", "telescope", "moon", "star", "satellite"],
        adjs=["distant", "enormous", "silent", "shiny", "mysterious"],
        verbs=[("launched", "launch"), ("observed", "observe"), ("repaired", "repair"), ("studied", "study")],
    ),
    "farm": dict(
        roles=["farmer", "shepherd", "vet", "tractor driver"],
        places=["barn", "farm", "meadow", "orchard"],
        nouns=["cow", "horse", "sheep", "apple", "tractor", "chicken", "hay"],
        adjs=["dusty", "hungry", "lazy", "ripe", "golden"],
        verbs=[("fed", "feed"), ("milked", "milk"), ("harvested", "harvest"), ("chased", "chase")],
    ),
    "family": dict(
        roles=["mother", "father", "uncle", "little sister"],
        places=["living room", "garden", "house", "bedroom"],
        nouns=["photograph", "birthday", "dinner", "letter", "gift", "blanket"],
        adjs=["happy", "lonely", "angry", "grateful", "nervous"],
        verbs=[("hugged", "hug"), ("called", "call"), ("forgave", "forgive"), ("visited", "visit")],
    ),
}

NAMES = ["Anna", "Marcus", "Lucy", "Daniel", "Rosa", "Victor", "Emily", "Samuel",
         "Nora", "Oliver", "Grace", "Thomas", "Hannah", "Leo", "Maya", "Henry"]

TEMPLATES = [
    "{name} walked to the {place} and looked at the {adj} {noun}.",
    "The {role} {verb} the {adj} {noun} near the {place}.",
    "Everyone at the {place} talked about the {noun} and the {noun2}.",
    "It was a {adj} day, and the {noun} seemed {adj2}.",
    "{name} remembered how the {role} once {verb} a {noun} at the {place}.",
    "Later that evening, the {role} {verb} the {noun} again.",
    "Why would anyone {verb_base} a {noun} like that?",
    "Nobody expected the {noun} to be so {adj}.",
    "{name} told the {role} that the {noun} was {adj}.",
    "The {adj} {noun} and the {adj2} {noun2} were all over the {place}.",
    "Please {verb_base} the {noun} before the {role} comes back.",
    "For a long time, {name} sat in the {place} and thought about the {noun}.",
    "The {role} smiled, because the {noun} was finally {adj}.",
    "Did the {role} really {verb_base} the {noun} at the {place}?",
]


@dataclass
class Sentence:
    """One sentence of a story and the index of its topic in ``TOPICS``."""

    text: str
    topic: int


def fill_template(template: str, topic: dict, cast: list, rng: np.random.Generator) -> str:
    """``template`` with its slots filled from ``topic``'s words and a name of ``cast``."""
    def pick(xs):
        return xs[rng.integers(len(xs))]

    nouns = rng.permutation(topic["nouns"])
    adjs = rng.permutation(topic["adjs"])
    verb, verb_base = pick(topic["verbs"])
    text = template.format(
        name=pick(cast), role=pick(topic["roles"]), place=pick(topic["places"]),
        noun=nouns[0], noun2=nouns[1], adj=adjs[0], adj2=adjs[1],
        verb=verb, verb_base=verb_base,
    )
    return text[0].upper() + text[1:]


def generate_sentences(rng: np.random.Generator, n_sentences: int,
                       min_run: int = 3, max_run: int = 6):
    """Yield sentences whose topic changes every ``min_run``-``max_run`` sentences.

    Parameters
    ----------
    rng : numpy Generator
    n_sentences : int
        Upper bound on the number of sentences (callers stop earlier when the
        audio is long enough).
    min_run, max_run : int
        Range of the number of consecutive sentences on one topic.

    Yields
    ------
    sentence : Sentence
    """
    names = list(TOPICS)
    cast = list(rng.choice(NAMES, size=3, replace=False))
    topic_idx, left = -1, 0
    for _ in range(n_sentences):
        if left == 0:
            choices = [i for i in range(len(names)) if i != topic_idx]
            topic_idx = int(rng.choice(choices))
            left = int(rng.integers(min_run, max_run + 1))
        left -= 1
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        yield Sentence(fill_template(template, TOPICS[names[topic_idx]], cast, rng), topic_idx)
