"""Validation: a proposal becomes a Suggestion only if it holds against the source.

The code must be an applicable code of the codebook and the quote must occur
verbatim (whitespace-normalised) in the chunk, in the words of a speaker whose
words are coded; anything else is a Rejection with the reason. Nothing a coder
says is accepted on its word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import ValidationError

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.errors import problems as describe
from pipeline.suggestion import ChunkCoding, Proposal, Rejection, Suggestion, suggestion_id


def find_verbatim(quote: str, text: str) -> tuple[int, int] | None:
    """Where `quote` stands in `text` word for word, as (start, end): the same characters, in the same
    case, whole words only, with any run of white space standing for any other. The rule a model's
    evidence quote must meet."""
    return next(verbatim_spans(quote, text), None)


# Characters a quote may give for one another: typography, not wording. Word transcripts are full of
# curly quotes, and models write straight ones (or the reverse).
_EQUIVALENTS = ("'’‘ʼ′`", '"“”„″', "-‐‑‒–—―")
_CLASS = {ch: "[" + re.escape(group) + "]" for group in _EQUIVALENTS for ch in group}
# an ellipsis in a quote stands for words left out (or for one the speaker said): within one
# sentence, a short way (MAX_GAP characters), at most MAX_PIECES parts; more would stitch a quote
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*")
MAX_GAP = 150
MAX_PIECES = 3
_SENTENCE_END = re.compile(r"\n|(?<!\.)[.!?](?!\.)(?=[\s\"'”’)]|$)")


def _word_pattern(word: str) -> str:
    return "".join(_CLASS.get(ch) or re.escape(ch) for ch in word)


def _whole(text: str, start: int, end: int, words: list[str]) -> bool:
    """Whole words only: "a" is not found inside "data"."""
    return not (words[0][0].isalnum() and start > 0 and text[start - 1].isalnum()) and not (
        words[-1][-1].isalnum() and end < len(text) and text[end].isalnum()
    )


def verbatim_spans(quote: str, text: str) -> Iterator[tuple[int, int]]:
    """Every place `quote` stands in `text` by `find_verbatim`'s rule, first to last. Curly and
    straight quotes, dashes and spaces of any kind stand for one another, and an ellipsis for words
    left out within the sentence: the span found is the text's own, from the first word to the
    last. Case and wording must match."""
    pieces = [p.split() for p in _ELLIPSIS.split(quote.strip())]
    pieces = [p for p in pieces if p]
    if not any(ch.isalnum() for piece in pieces for word in piece for ch in word) or len(pieces) > MAX_PIECES:
        return  # nothing, or punctuation alone, is no evidence; nor is a quote of many fragments
    # each part's words in order with any run of whitespace between them: searching the
    # text as it is, rather than a collapsed copy built a character at a time, keeps
    # checking a quote against a long chunk cheap
    patterns = [re.compile(r"\s+".join(map(_word_pattern, p))) for p in pieces]
    match = patterns[0].search(text)
    while match is not None:
        start, end = match.span()
        if _whole(text, start, end, pieces[0]):
            for pattern, words in zip(patterns[1:], pieces[1:]):
                end = _after_gap(pattern, words, text, end)
                if end < 0:
                    break
            else:
                yield start, end
        match = patterns[0].search(text, start + 1)


def _after_gap(pattern: re.Pattern[str], words: list[str], text: str, at: int) -> int:
    """Where the next part of a quote ends, found after a gap within one sentence; -1 if nowhere."""
    limit = min(len(text), at + MAX_GAP + 2 * sum(len(w) + 1 for w in words))
    found = pattern.search(text, at, limit)
    while found is not None:
        if len(text[at : found.start()]) > MAX_GAP or _SENTENCE_END.search(text, at, found.start()):
            return -1
        if _whole(text, found.start(), found.end(), words):
            return found.end()
        found = pattern.search(text, found.start() + 1, limit)
    return -1


def _in_coded_words(chunk: Chunk, quote: str) -> tuple[tuple[int, int] | None, str | None]:
    """Where a quote stands in the chunk's coded words, or why it does not: the first place that
    touches no turn of a speaker whose words are context only. A quote found only in such turns is
    refused with the speaker named."""
    context = [t for t in chunk.turns if not t.coded]
    uncoded_speaker: str | None = None  # of the first place found, when every place is context
    across: str | None = None  # the speakers of the first place found, when every place runs across turns
    for start, end in _places(quote, chunk.text):
        a, b = chunk.start + start, chunk.start + end
        touched = [t for t in chunk.turns if a < t.end and t.start < b]
        # a document's paragraphs (no speaker) may run on across a page: only speakers' turns part a quote
        if len(touched) > 1 and any(t.speaker for t in touched):
            across = across or " and ".join(dict.fromkeys(t.speaker or "no speaker" for t in touched))
            continue
        uncoded = next((t for t in context if a < t.end and t.start < b), None)
        if uncoded is None:
            return (start, end), None
        uncoded_speaker = uncoded_speaker or (uncoded.speaker or "a passage with no speaker")
    if uncoded_speaker is not None:
        return None, f"quote is the words of {uncoded_speaker}, whose words are context, not coded"
    if across is not None:
        return None, f"quote runs across turns ({across}): evidence is one speaker's words"
    return None, "quote is not verbatim in the chunk"


# quotation marks a model puts around a quote (the words inside are the quote)
_ENCLOSING = {'"': '"', "“": "”", "'": "'", "‘": "’", "«": "»", "„": "“"}


def _places(quote: str, text: str) -> Iterator[tuple[int, int]]:
    """Where a quote stands in the text; when it stands nowhere as given and the model put it in
    quotation marks, where the words inside them stand."""
    found = False
    for span in verbatim_spans(quote, text):
        found = True
        yield span
    bare = quote.strip()
    if not found and len(bare) > 2 and _ENCLOSING.get(bare[0]) == bare[-1]:
        yield from verbatim_spans(bare[1:-1], text)


def validate_coding(
    coding: ChunkCoding, chunk: Chunk, codebook: Codebook, coder_key: str
) -> tuple[list[Suggestion], list[Rejection]]:
    """Check every proposal of one chunk; quotes get absolute transcript offsets."""
    suggestions: dict[str, Suggestion] = {}
    rejections: list[Rejection] = []
    applicable = codebook.applicable_ids()
    if coding.invalid_reply is not None:
        rejections.append(
            Rejection(
                chunk_id=chunk.id,
                code=None,
                quote=None,
                reason=coding.invalid_reason or "the reply was not valid JSON of the requested form",
                raw=coding.invalid_reply,
            )
        )
    for raw in coding.proposals:
        try:
            proposal = raw if isinstance(raw, Proposal) else Proposal.model_validate(raw)
        except ValidationError as exc:
            problems = describe(exc)
            rejections.append(
                Rejection(
                    chunk_id=chunk.id,
                    code=_field(raw, "code"),
                    quote=_field(raw, "quote"),
                    reason=f"malformed proposal: {problems}",
                    raw=_jsonable(raw),
                )
            )
            continue
        reason = _code_problem(proposal.code, codebook, applicable)
        span = None
        if reason is None:
            span, reason = _in_coded_words(chunk, proposal.quote)
        if reason is None and proposal.code in suggestions:
            reason = f"code '{proposal.code}' proposed more than once for this chunk"
        if reason or span is None:
            rejections.append(
                Rejection(
                    chunk_id=chunk.id,
                    code=proposal.code,
                    quote=proposal.quote,
                    reason=reason or "quote is not verbatim in the chunk",
                    raw=proposal.model_dump(),
                )
            )
            continue
        start, end = span
        suggestions[proposal.code] = Suggestion(
            id=suggestion_id(chunk.id, coder_key, proposal.code),
            chunk_id=chunk.id,
            transcript_id=chunk.transcript_id,
            code=proposal.code,
            justification=proposal.justification,
            quote=chunk.text[start:end],
            quote_start=chunk.start + start,
            quote_end=chunk.start + end,
            confidence=proposal.confidence,
        )
    return list(suggestions.values()), rejections


def _code_problem(code: str, codebook: Codebook, applicable: set[str]) -> str | None:
    if code in applicable:
        return None
    if codebook.get(code) is not None:
        under = codebook.codes_under(code)
        listed = f": {', '.join(under)}" if under else ""
        return f"code '{code}' is a category; apply one of the codes under it{listed}"
    return f"code '{code}' is not in the codebook"


def _field(raw: object, name: str) -> str | None:
    value = raw.get(name) if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _jsonable(raw: object) -> object:
    if isinstance(raw, (dict, list, str, int, float, bool)) or raw is None:
        return raw
    return repr(raw)
