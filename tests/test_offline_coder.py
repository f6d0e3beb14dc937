"""The offline coder: sentence embeddings from the model a package ships."""

from __future__ import annotations

import pytest
from fakes import LINKAGES

from pipeline.chunk import chunk_transcript
from pipeline.codebook import load_codebook
from pipeline.coders import make_coder, provenance
from pipeline.transcript import Transcript, parse_turns, transcript_id
from pipeline.validate import validate_coding

pytestmark = pytest.mark.slow  # every test here loads the embedding model


def transcript(text: str) -> Transcript:
    return Transcript(
        id=transcript_id("t", text),
        source_path="t",
        source_name="t",
        format="text",
        encoding="utf-8",
        text=text,
        turns=parse_turns(text),
    )


def test_offline_coder_proposes_valid_codes_with_verbatim_quotes(small_codebook) -> None:
    codebook = load_codebook(small_codebook)
    t = transcript(
        "Interviewer: Tell me about money and trust in the district.\n"
        "Ms. Chen: The district gave our department a grant to buy new lab materials.\n"
        "Interviewer: And what about the weather?\n"
        "Mr. Ortiz: It rained all week and the parking lot flooded again."
    )
    chunks = chunk_transcript(t, size=90)
    coder = make_coder("offline")
    codings = coder.code(chunks, codebook)
    assert [c.chunk_id for c in codings] == [c.id for c in chunks]
    by_chunk = {}
    for chunk, coding in zip(chunks, codings):
        suggestions, rejections = validate_coding(coding, chunk, codebook, provenance(coder, codebook).coder_key)
        assert not rejections
        by_chunk[chunk.index] = suggestions
        for s in suggestions:
            assert 0 <= s.confidence <= 1
            assert t.text[s.quote_start : s.quote_end] == s.quote
            assert s.justification.count(".") >= 1
    grant = next(i for i, c in enumerate(chunks) if "grant" in c.text)
    assert [s.code for s in by_chunk[grant]][0] == "funding"
    assert by_chunk[grant][0].quote == "The district gave our department a grant to buy new lab materials."
    weather = next(i for i, c in enumerate(chunks) if "rained" in c.text)
    assert by_chunk[weather] == []
    # the interviewer's question names the codes but is never quoted
    assert all("Tell me" not in s.quote for ss in by_chunk.values() for s in ss)


def test_threshold_controls_how_much_is_proposed() -> None:
    codebook = load_codebook(LINKAGES)
    t = transcript(
        "Interviewer: How do you hear about district decisions?\n"
        "Ms. Brooks: We only hear about decisions from the district office after they are made, "
        "and nobody asks teachers for feedback before the plan is rolled out."
    )
    chunks = chunk_transcript(t)
    loose = make_coder("offline", similarity_threshold=0.2, max_codes=12, margin=1).code(chunks, codebook)[0].proposals
    default = make_coder("offline").code(chunks, codebook)[0].proposals
    strict = make_coder("offline", similarity_threshold=0.95).code(chunks, codebook)[0].proposals
    assert strict == []
    assert 0 < len(default) <= 3 < len(loose)
    assert "communication.weakness" in [p.code for p in loose[:3]]
    confidences = [p.confidence for p in loose]
    assert confidences == sorted(confidences, reverse=True)


def test_coder_key_changes_with_what_changes_the_coding(small_codebook) -> None:
    codebook = load_codebook(small_codebook)
    a = provenance(make_coder("offline"), codebook).coder_key
    assert a == provenance(make_coder("offline"), codebook).coder_key
    assert a != provenance(make_coder("offline", similarity_threshold=0.5), codebook).coder_key
    assert a != provenance(make_coder("offline"), load_codebook(LINKAGES)).coder_key


def test_a_strength_and_a_weakness_are_not_both_proposed_on_one_sentence() -> None:
    codebook = load_codebook(LINKAGES)
    t = transcript(
        "Interviewer: Tell me about the district.\n"
        "Ms. Chen: We meet with the district leadership team every month, and the meetings are mostly announcements. "
        "The district gives us release time, but the funding ends in June. I carry the district's plan to my department."
    )
    coder = make_coder("offline", similarity_threshold=0.2, max_codes=12, margin=1)
    for coding in coder.code(chunk_transcript(t), codebook):
        claims = [(codebook.get(p.code).parent, p.quote) for p in coding.proposals]
        assert len(claims) == len(set(claims))
