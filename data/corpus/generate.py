#!/usr/bin/env python3
"""Generates data/corpus/corpus.txt: a deterministic English-like text for the live worker.

The text comes from a small hand-written grammar (sentences about sites, weather, power and
training runs) driven by a SplitMix64 generator written here, so the output depends only on this
script and the seed, never on the Python version. It has enough structure for a byte-level model to
learn (spelling, agreement, recurring phrases) and enough variety that a tiny model does not
memorise it in a few hundred steps.

Usage:
  generate.py                 write corpus.txt next to this script
  generate.py --check         exit 1 if corpus.txt differs from what this script generates
  generate.py --bytes N --seed S --out PATH
"""
import argparse
import hashlib
import os
import sys

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def chance(self, percent):
        return self.below(100) < percent


SITES = ["the northern site", "the coastal site", "the desert site", "the valley site",
         "the mountain site", "the river site", "the island site", "the plains site"]
PLACES = ["Oslo", "Madrid", "Quebec", "Texas", "Oregon", "Iceland", "Chile", "Kenya", "Tasmania",
          "Scotland", "Morocco", "Nevada"]
THINGS_SG = ["wind farm", "solar field", "battery", "turbine", "grid", "cluster", "model",
             "forecast", "checkpoint", "pipeline", "storm", "river", "cloud", "operator",
             "engineer", "scheduler", "transformer", "network", "river dam", "sunrise"]
THINGS_PL = ["wind farms", "solar fields", "batteries", "turbines", "grids", "clusters", "models",
             "forecasts", "checkpoints", "pipelines", "storms", "rivers", "clouds", "operators",
             "engineers", "schedulers", "transformers", "networks", "gradients", "workers"]
ADJS = ["quiet", "bright", "cold", "windy", "green", "busy", "slow", "fast", "large", "small",
        "steady", "clean", "dark", "warm", "old", "new", "careful", "patient", "distant", "early"]
VERBS_SG = ["feeds", "moves", "charges", "waits for", "follows", "powers", "watches", "reaches",
            "saves", "trains", "measures", "cools", "carries", "finds", "holds", "sends"]
VERBS_PL = ["feed", "move", "charge", "wait for", "follow", "power", "watch", "reach", "save",
            "train", "measure", "cool", "carry", "find", "hold", "send"]
VERBS_PAST = ["fed", "moved", "charged", "waited for", "followed", "powered", "watched", "reached",
              "saved", "trained", "measured", "cooled", "carried", "found", "held", "sent"]
ADVS = ["slowly", "quickly", "quietly", "again", "early", "late", "carefully", "at night",
        "before dawn", "all day", "without pause", "once more"]
PREPS = ["near", "behind", "above", "under", "beside", "beyond", "across", "towards"]
TIMES = ["in the morning", "at noon", "in the evening", "at midnight", "after the storm",
         "before the rain", "during the long night", "when the wind returned", "in winter",
         "in summer", "on the first day", "on the last day"]
CONNECT = ["and", "but", "so", "while", "because", "until"]
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "twelve", "twenty", "forty", "a hundred"]
UNITS = ["megawatts", "hours", "steps", "gigabytes", "kilometres", "minutes", "turbines",
         "batteries"]
NAMES = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia",
         "Leslie", "Margaret", "Ken"]
SAYS = ["said", "wrote", "asked", "answered", "noted", "remembered"]


def article(rng, noun, adj_percent=40):
    adj = rng.pick(ADJS) + " " if rng.chance(adj_percent) else ""
    word = adj + noun
    if rng.chance(50):
        return "the " + word
    return ("an " if word[0] in "aeiou" else "a ") + word


def noun_phrase(rng):
    """Returns (text, plural)."""
    r = rng.below(10)
    if r < 4:
        return article(rng, rng.pick(THINGS_SG)), False
    if r < 7:
        adj = rng.pick(ADJS) + " " if rng.chance(40) else ""
        det = rng.pick(["the ", "", "many ", "some ", rng.pick(NUMBERS) + " "])
        return det + adj + rng.pick(THINGS_PL), True
    if r < 9:
        return rng.pick(SITES), False
    return rng.pick(NAMES), False


def object_phrase(rng):
    text, _ = noun_phrase(rng)
    if rng.chance(25):
        text += " " + rng.pick(PREPS) + " " + noun_phrase(rng)[0]
    if rng.chance(10):
        text += " in " + rng.pick(PLACES)
    return text


def clause(rng):
    subj, plural = noun_phrase(rng)
    tense = rng.below(3)
    if tense == 0:
        verb = rng.pick(VERBS_PL if plural else VERBS_SG)
    elif tense == 1:
        verb = rng.pick(VERBS_PAST)
    else:
        verb = "will " + rng.pick(VERBS_PL)
    text = subj + " " + verb + " " + object_phrase(rng)
    if rng.chance(30):
        text += " " + rng.pick(ADVS)
    return text


def sentence(rng):
    r = rng.below(20)
    if r < 9:
        text = clause(rng)
    elif r < 13:
        text = clause(rng) + ", " + rng.pick(CONNECT) + " " + clause(rng)
    elif r < 15:
        text = rng.pick(TIMES) + ", " + clause(rng)
    elif r < 17:
        text = ("there were " + rng.pick(NUMBERS) + " " + rng.pick(UNITS) + " of "
                + rng.pick(["wind", "sun", "power", "work", "data", "rain"]) + " in "
                + rng.pick(PLACES))
    elif r < 19:
        quoted = clause(rng)
        return ('"' + quoted[0].upper() + quoted[1:] + '," ' + rng.pick(NAMES) + " "
                + rng.pick(SAYS) + ".")
    else:
        text = "did " + noun_phrase(rng)[0] + " " + rng.pick(VERBS_PL) + " " + object_phrase(rng)
        return text[0].upper() + text[1:] + "?"
    return text[0].upper() + text[1:] + "."


def generate(seed, target_bytes):
    rng = SplitMix64(seed)
    paragraphs = []
    total = 0
    while total < target_bytes:
        sentences = [sentence(rng) for _ in range(3 + rng.below(5))]
        para = " ".join(sentences)
        paragraphs.append(para)
        total += len(para) + 2
    return "\n\n".join(paragraphs) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--bytes", type=int, default=200000)
    ap.add_argument("--out", default=os.path.join(here, "corpus.txt"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text = generate(args.seed, args.bytes).encode("ascii")
    if args.check:
        with open(args.out, "rb") as f:
            same = f.read() == text
        print("corpus.txt is " + ("up to date" if same else "STALE: rerun generate.py"))
        return 0 if same else 1
    with open(args.out, "wb") as f:
        f.write(text)
    print("wrote %s: %d bytes, sha256 %s" % (args.out, len(text), hashlib.sha256(text).hexdigest()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
