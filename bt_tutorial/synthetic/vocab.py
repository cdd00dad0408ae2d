"""Words and templates of the synthetic downstream tasks.

Every template has slots filled at random, so that a class is never one fixed
sentence: a probe has to pick up what the class shares (a category of nouns, an
intent, a sentence form), not the sound of one recording.
"""

from __future__ import annotations

CATEGORIES = {
    "animal": ("dog", "cat", "horse", "rabbit", "tiger", "whale", "sheep", "mouse", "eagle",
               "monkey", "snake", "goat"),
    "food": ("apple", "bread", "cheese", "carrot", "banana", "soup", "rice", "cookie", "onion",
             "lemon", "butter", "potato"),
    "body part": ("hand", "elbow", "knee", "shoulder", "finger", "nose", "ankle", "stomach",
                  "tooth", "chin", "ear", "neck"),
    "vehicle": ("car", "bus", "truck", "bicycle", "train", "boat", "plane", "tractor", "taxi",
                "scooter", "ship", "van"),
    "clothing": ("shirt", "jacket", "sock", "scarf", "glove", "sweater", "coat", "hat", "boot",
                 "dress", "belt", "skirt"),
    "furniture": ("chair", "table", "sofa", "bed", "desk", "shelf", "cupboard", "stool", "bench",
                  "mirror", "drawer", "lamp"),
    "profession": ("doctor", "teacher", "farmer", "baker", "pilot", "nurse", "lawyer", "painter",
                   "plumber", "judge", "singer", "soldier"),
    "weather": ("rain", "snow", "thunder", "wind", "fog", "storm", "frost", "hail", "sunshine",
                "cloud", "breeze", "drizzle"),
}
ADJECTIVES = ("big", "small", "new", "strange", "lovely", "heavy", "quiet", "famous", "dirty",
              "tiny", "pretty", "busy")
# {a} is "a" or "an" for the word that follows it
PHRASES = ("{noun}", "the {noun}", "{a} {noun}", "the {adj} {noun}", "{a} {adj} {noun}",
           "my {adj} {noun}", "that {noun}", "this {adj} {noun}")

SLOTS = {
    "genre": ("jazz", "rock", "classical", "country", "reggae", "pop", "blues", "folk"),
    "artist": ("the beatles", "adele", "mozart", "queen", "madonna", "elvis", "bob marley",
               "shakira"),
    "time": ("seven am", "six thirty", "noon", "nine fifteen", "eight pm", "half past five",
             "ten o'clock", "midnight"),
    "date": ("tomorrow", "today", "on monday", "on friday", "this weekend", "next tuesday",
             "tonight", "on sunday"),
    "city": ("paris", "london", "berlin", "tokyo", "chicago", "boston", "madrid", "sydney"),
    "person": ("anna", "david", "my mother", "peter", "sarah", "my boss", "john", "maria"),
    "room": ("kitchen", "bedroom", "living room", "bathroom", "garage", "hallway", "office",
             "dining room"),
    "event": ("meeting", "dentist appointment", "birthday party", "lunch", "football match",
              "doctor's visit", "concert", "team call"),
    "topic": ("the election", "the stock market", "football", "the economy", "science",
              "technology", "the olympics", "the new law"),
}
INTENTS = {
    "play_music": ("play some {genre} music", "put on {artist}", "i want to listen to {artist}",
                   "play my {genre} playlist {date}", "can you play {artist} please"),
    "set_alarm": ("wake me up at {time}", "set an alarm for {time} {date}", "alarm at {time} please",
                  "i need an alarm {date} at {time}"),
    "weather_query": ("what is the weather in {city} {date}", "will it rain in {city} {date}",
                      "do i need an umbrella {date}", "how cold is it in {city}"),
    "call_contact": ("call {person}", "give {person} a ring {date}", "phone {person} at {time}",
                     "dial {person} now please"),
    "lights_off": ("turn off the lights in the {room}", "switch the {room} lights off",
                   "lights off in the {room} please", "make the {room} dark"),
    "calendar_set": ("remind me about the {event} {date}", "add a {event} to my calendar at {time}",
                     "schedule a {event} with {person} {date}", "put the {event} in my diary"),
    "send_email": ("send an email to {person}", "email {person} about the {event}",
                   "write an email to {person} {date}", "mail {person} that i am late"),
    "news_query": ("what is the latest news about {topic}", "tell me the headlines {date}",
                   "any news on {topic}", "read me the news about {topic}"),
    # near neighbours of the intents above, as in SLURP (alarm_set / alarm_remove / alarm_query ...):
    # the same slots and most of the same words, so a probe has to hear which words differ
    "lights_on": ("turn on the lights in the {room}", "switch the {room} lights on",
                  "lights on in the {room} please", "make the {room} bright"),
    "alarm_remove": ("cancel my alarm for {time}", "remove the alarm at {time} {date}",
                     "delete the alarm for {time} please", "i do not need an alarm {date}"),
    "alarm_query": ("is my alarm set for {time}", "what alarms do i have {date}",
                    "when does my alarm go off {date}", "do i have an alarm at {time}"),
    "calendar_query": ("when is my {event}", "what is on my calendar {date}",
                       "do i have a {event} {date}", "am i free at {time} {date}"),
}

# sentences about the twin's story topics (narrative.TOPICS), from templates that no story uses
# (narrative.TEMPLATES), so every clip is a sentence that occurs in no story; "the" everywhere
TOPIC_TEMPLATES = (
    "At the {place}, the {role} {verb} the {adj} {noun}.",
    "The {noun} by the {place} looked {adj} to the {role}.",
    "Nobody at the {place} {verb} the {noun} that morning.",
    "I heard the {role} say that the {noun} was {adj}.",
    "We asked the {role} about the {adj} {noun} and the {noun2}.",
    "The {role} {verb} the {noun} while we waited at the {place}.",
)

SUBJECTS = ("my brother", "the teacher", "she", "he", "our neighbour", "your friend", "the doctor",
            "the old man")
# (base form, third person singular)
VERBS = (("open", "opens"), ("close", "closes"), ("clean", "cleans"), ("carry", "carries"),
         ("read", "reads"), ("paint", "paints"), ("fix", "fixes"), ("find", "finds"),
         ("wash", "washes"), ("check", "checks"))
OBJECTS = ("the door", "the window", "the letter", "the kitchen", "the car", "the book", "the box",
           "the fence", "the map", "the gate")
WHEN = ("today", "tomorrow", "every morning", "right now", "after lunch", "tonight")
SENTENCE_TYPES = {
    "statement": ("{S} {V3} {O}.", "{S} {V3} {O} {when}.", "{S} will {V} {O} {when}."),
    # the last form is a question by intonation only
    "question": ("Does {s} {V} {O}?", "Will {s} {V} {O} {when}?", "Why does {s} {V} {O}?",
                 "{S} {V3} {O}?"),
    "command": ("{V} {O}.", "Please {V} {O} {when}.", "{V} {O} now!", "Go and {V} {O}."),
}

# words that cover the rarer phones (ZH, OY, UH, TH, DH, NG, CH, JH) for the phoneme task
EXTRA_WORDS = ("measure", "vision", "treasure", "usual", "garage", "beige", "boy", "toy", "coin",
               "noise", "voice", "oil", "book", "good", "wood", "foot", "cook", "push", "thank",
               "three", "bath", "this", "mother", "sing", "king", "long", "church", "chin", "jam",
               "judge", "youth", "yellow", "house", "mouth", "quick", "zoo", "fur", "bird")
