"""A poem written line by line, searched by MCTS over the executions of the program.

A toy poet (``write_line``) proposes each line from a small word list; its
randomness comes from ``enact.search.draw()``, so a search with the same seed
writes the same lines. A deterministic judge scores the finished poem: eight
syllables a line and the rhyme scheme AABB. Each node of the search is a prefix of
lines already written; expanding it rewinds the poem there and lets the poet write
the rest again, reusing the lines before the cut.

Run ``python examples/poem.py [budget]``: MCTS and best-of-N at the same budget.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys

import enact
from enact import search

LINES = 4
SYLLABLES = 8
SCHEME = "AABB"
WORDS = (
    "the a of in on under over beyond silver golden quiet river morning evening light "
    "night bright sight stone alone moon soon tune sky high fly away day stay gray "
    "wind kind mind sea free tree autumn winter summer garden shadow meadow whisper "
    "wander softly slowly endless hollow yellow mellow fire desire higher bird heard word"
).split()


def syllables(word: str) -> int:
    """Vowel groups, less a silent final e: a rough, deterministic count."""
    word = word.lower()
    count = len(re.findall(r"[aeiouy]+", word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and count > 1:
        count -= 1
    return max(1, count)


def rhyme(word: str) -> str:
    """The last vowel group and what follows it: words with the same one rhyme."""
    match = re.search(r"[aeiouy]+[^aeiouy]*$", word.lower())
    return match.group(0) if match else word.lower()


@enact.register
def write_line(previous: list, number: int) -> str:
    """The toy poet: one line of four to seven words, given the lines so far."""
    sample = search.draw()
    rng = random.Random(hashlib.sha256(f"{previous}|{number}|{sample}".encode()).digest())
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 7)))


@enact.register
def poem(lines: int = LINES) -> list:
    """The program: write the poem line by line."""
    written: list[str] = []
    for number in range(lines):
        written.append(write_line(list(written), number))
    return written


@enact.register
def judge(invocation: enact.Invocation) -> float:
    """From 0 to 1: half for syllable counts, half for the lines that rhyme as they should."""
    lines = invocation.get_output()
    meter = sum(
        max(0.0, 1 - abs(sum(syllables(w) for w in line.split()) - SYLLABLES) / SYLLABLES)
        for line in lines
    ) / len(lines)
    ends = [rhyme(line.split()[-1]) for line in lines]
    pairs = [(i, j) for i in range(len(lines)) for j in range(i + 1, len(lines))]
    wanted = [(i, j) for i, j in pairs if SCHEME[i] == SCHEME[j]]
    rhymes = sum(ends[i] == ends[j] for i, j in wanted) / len(wanted)
    return 0.5 * meter + 0.5 * rhymes


def main(argv: list[str]) -> None:
    budget = int(argv[0]) if argv else 64
    with enact.InMemoryStore():
        for strategy in ("best_of_n", "mcts"):
            result = search.search(
                strategy, poem, (), scorer=judge, budget=budget, parallelism=4, seed=1,
                cluster=False,
            )  # fmt: skip
            print(f"{strategy}: score {result.score:.3f}, {result.stats['sampled']} lines "
                  f"written, {result.stats['reused_samples']} reused")  # fmt: skip
            for line in result.best.get_output():
                print("   ", line)


if __name__ == "__main__":
    main(sys.argv[1:])
