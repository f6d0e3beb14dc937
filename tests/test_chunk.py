from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.chunk import chunk_transcript
from pipeline.transcript import Transcript, parse_turns, transcript_id


def make(text: str) -> Transcript:
    return Transcript(
        id=transcript_id("t.txt", text),
        source_path="t.txt",
        source_name="t.txt",
        format="text",
        encoding="utf-8",
        text=text,
        turns=parse_turns(text),
    )


words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=12
)
sentence = st.builds(
    lambda ws, end: " ".join(ws) + end,
    st.lists(words, min_size=1, max_size=25),
    st.sampled_from([".", "!", "?", "", "…"]),
)
turn = st.builds(
    lambda name, sentences, sep: f"{name}: " + sep.join(sentences),
    st.sampled_from(["Interviewer", "Ms. Chen", "Dr. Ramos", "P1"]),
    st.lists(sentence, min_size=1, max_size=12),
    st.sampled_from([" ", "  ", "\n", " \t "]),
)
transcript_text = st.builds(
    lambda turns, sep: sep.join(turns),
    st.lists(turn, min_size=1, max_size=15),
    st.sampled_from(["\n", "\n\n", "\n \n"]),
)


def word_spans(text: str) -> set[tuple[int, int]]:
    return {m.span() for m in re.finditer(r"\S+", text)}


@pytest.mark.slow  # hundreds of generated transcripts
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=transcript_text, size=st.integers(20, 600), overlap_share=st.floats(0, 0.5))
def test_chunks_are_exact_slices_and_never_cut_words(text: str, size: int, overlap_share: float) -> None:
    transcript = make(text)
    overlap = int(size * overlap_share)
    chunks = chunk_transcript(transcript, size=size, overlap=overlap)
    assert chunks
    words = word_spans(text)
    starts = {s for s, _ in words}
    ends = {e for _, e in words}
    for chunk in chunks:
        assert chunk.text == transcript.text[chunk.start : chunk.end]
        assert chunk.text.strip() == chunk.text  # no chunk begins or ends in whitespace
        assert chunk.start in starts and chunk.end in ends  # so no word is cut
        if chunk.end - chunk.start > size:
            # only a word longer than the chunk size, or a speaker label kept with
            # the words that follow it, may make a chunk exceed the size
            first = transcript.turns[chunk.first_turn]
            label = first.text_start - first.start if chunk.start == first.start else 0
            long_word = any(e - s > size and chunk.start <= s < e <= chunk.end for s, e in words)
            assert long_word or chunk.end - chunk.start - label <= size
        for t in chunk.turns:
            assert chunk.start <= t.start < t.end <= chunk.end
    # every word of every turn is in some chunk
    covered = [False] * len(text)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    assert all(covered[s] for s, _ in words)
    # chunks move forward
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(text=transcript_text, size=st.integers(50, 800))
def test_turns_are_split_only_when_they_alone_exceed_the_size(text: str, size: int) -> None:
    transcript = make(text)
    chunks = chunk_transcript(transcript, size=size)
    for t in transcript.turns:
        pieces = [c for c in chunks if c.first_turn <= t.index <= c.last_turn]
        if t.end - t.start <= size:
            assert any(c.start <= t.start and t.end <= c.end for c in pieces), "a short turn was split"


def test_speakers_and_turns_are_carried_into_pieces() -> None:
    long_answer = " ".join(f"Sentence number {i} is about the district." for i in range(40))
    transcript = make(f"Interviewer: Tell me more.\nMs. Chen: {long_answer}\nInterviewer: Thanks.")
    chunks = chunk_transcript(transcript, size=300)
    middle = [c for c in chunks if c.first_turn == c.last_turn == 1]
    assert len(middle) >= 5
    assert all(c.speakers == ["Ms. Chen"] for c in middle)
    assert not middle[1].text.startswith("Ms. Chen:")
    assert all(c.text.endswith(".") for c in middle)  # cut at sentence ends


def test_overlap_repeats_whole_trailing_turns() -> None:
    text = "\n".join(f"{'AB'[i % 2]}: turn {i} has some words in it." for i in range(10))
    transcript = make(text)
    chunks = chunk_transcript(transcript, size=120, overlap=40)
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:]):
        assert b.first_turn <= a.last_turn + 1
    assert any(b.first_turn == a.last_turn for a, b in zip(chunks, chunks[1:]))
    plain = chunk_transcript(transcript, size=120, overlap=0)
    assert all(b.first_turn == a.last_turn + 1 for a, b in zip(plain, plain[1:]))


def test_bad_sizes_are_refused() -> None:
    transcript = make("A: hello there.")
    with pytest.raises(ValueError):
        chunk_transcript(transcript, size=100, overlap=100)
    with pytest.raises(ValueError):
        chunk_transcript(transcript, size=0)


def test_a_speaker_label_is_never_a_chunk_of_its_own() -> None:
    url = "https://example.org/" + "x" * 160
    transcript = make(f"Interviewer: Where?\nAna: see {url} for the plan.")
    chunks = chunk_transcript(transcript, size=100)
    assert all(c.text not in ("Ana:", "see") for c in chunks)
    assert any(c.text.startswith("Ana: see") for c in chunks)


def test_a_run_without_spaces_longer_than_any_word_is_cut_to_the_chunk_size() -> None:
    pasted = "".join(chr(65 + (i * 7) % 26) for i in range(5000))  # a pasted log, base64: no word
    text = f"Client: I pasted it here: {pasted} and then we talked.\nInterviewer: Thank you."
    chunks = chunk_transcript(make(text), size=1200)
    assert all(c.text == text[c.start : c.end] and len(c.text) <= 1200 for c in chunks)
    covered = "".join(c.text for c in chunks if c.speakers == ["Client"])
    assert pasted in covered.replace(" ", "")  # every character of it is in some chunk, in order
