"""The words a passage holds, known the same way in every copy of its transcript.

A transcript's id comes from its file name, so the same interview stored again from another folder
or under another name is another transcript. For blind coding that must not matter: a reviewer who
has seen the model's codes on some words has seen them on every copy of those words. So each passage
is placed by words, not by file, twice:

- `t…`: a hash of its transcript's whitespace-normalised text, with the passage's span in that
  normalised text: every copy of the interview, however its lines are wrapped or its file named;
- `w…`, for each turn it touches: a hash of that turn's spoken words with those of the turns either
  side (labels left out, so a copy whose speakers were renamed still matches), with the span of the
  passage inside the turn's words; only when the three hold enough words to be told apart. The turns
  either side keep a protocol question, asked in every interview, from making every interview one.

Two passages share words when they have a key in common and their spans under it overlap: copies of
one passage do, and so do two chunkings of the same turns; the parts of one long turn do not.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Sequence

MIN_WORDS_CHARS = 40  # a turn and its neighbours this short ("Yes." "Okay." "Yes.") match by chance
_WORD = re.compile(r"\S+")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class TranscriptWords:
    """A transcript's text, whitespace-normalised, and where each of its turns' words lie in it.

    `turns` are the spoken words of each turn as (start, end) offsets into the text, in turn order."""

    def __init__(self, text: str, turns: Sequence[tuple[int, int]]) -> None:
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        self._starts = [s for s, _ in words]
        self._ends = [e for _, e in words]
        # where each word begins in the normalised text (words joined by one space)
        self._at: list[int] = []
        at = 0
        for s, e in words:
            self._at.append(at)
            at += e - s + 1
        self.whole = "t" + _hash(" ".join(text[s:e] for s, e in words))
        self.turns = list(turns)
        spoken = [" ".join(text[start:end].split()) for start, end in self.turns]
        self._turn_keys: list[str | None] = []
        for i, own in enumerate(spoken):
            around = [spoken[i - 1] if i > 0 else "", own, spoken[i + 1] if i + 1 < len(spoken) else ""]
            enough = own and sum(map(len, around)) >= MIN_WORDS_CHARS
            self._turn_keys.append("w" + _hash("\x1f".join(around)) if enough else None)

    def _from(self, position: int) -> int:
        """Where the words from `position` on begin in the normalised text."""
        k = bisect.bisect_right(self._ends, position)  # the first word ending after it
        if k == len(self._ends):
            return self._at[-1] + self._ends[-1] - self._starts[-1] if self._ends else 0
        return self._at[k] + max(0, position - self._starts[k])

    def _to(self, position: int) -> int:
        """Where the words up to `position` end in the normalised text."""
        k = bisect.bisect_left(self._starts, position) - 1  # the last word starting before it
        if k < 0:
            return 0
        return self._at[k] + min(position, self._ends[k]) - self._starts[k]

    def passage(self, start: int, end: int, first_turn: int, last_turn: int) -> list[tuple[str, int, int]]:
        """The keys of the passage text[start:end] spanning turns first_turn..last_turn, each with the
        passage's span under it."""
        found = {self.whole: (self._from(start), self._to(end))}
        for i in range(max(first_turn, 0), min(last_turn, len(self.turns) - 1) + 1):
            key = self._turn_keys[i]
            turn_start, turn_end = self.turns[i]
            if key is None or end <= turn_start or turn_end <= start:
                continue
            origin = self._from(turn_start)
            span = (self._from(max(start, turn_start)) - origin, self._to(min(end, turn_end)) - origin)
            if key in found:  # the same words twice in one passage: the passage holds both places
                span = (min(span[0], found[key][0]), max(span[1], found[key][1]))
            found[key] = span
        return [(key, s, e) for key, (s, e) in found.items()]
