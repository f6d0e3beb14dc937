from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.chunk import Chunk, ChunkTurn
from pipeline.codebook import load_codebook
from pipeline.suggestion import ChunkCoding
from pipeline.validate import find_verbatim, validate_coding

TEXT = "Ms. Chen: The district gives us\n  release time every month.  We trust our principal."


def chunk_of(text: str, turns: list[tuple[str | None, int, int]], offset: int = 0) -> Chunk:
    """A chunk of `text` at `offset`, with its turns as (speaker, start, end) in the text."""
    return Chunk(
        id="c1",
        transcript_id="t1",
        index=0,
        start=offset,
        end=offset + len(text),
        text=text,
        speakers=list(dict.fromkeys(who for who, _, _ in turns if who)),
        first_turn=0,
        last_turn=len(turns) - 1,
        turns=[
            ChunkTurn(index=i, speaker=who, start=offset + a, end=offset + b) for i, (who, a, b) in enumerate(turns)
        ],
    )


def chunk(offset: int = 100) -> Chunk:
    return chunk_of(TEXT, [("Ms. Chen", 10, len(TEXT))], offset)


def proposal(code: str = "funding", quote: str = "release time every month.", confidence: float = 0.9) -> dict:
    return {"code": code, "justification": "Because.", "quote": quote, "confidence": confidence}


def check(small_codebook, *proposals):
    codebook = load_codebook(small_codebook)
    return validate_coding(ChunkCoding(chunk_id="c1", proposals=list(proposals)), chunk(), codebook, "key")


def test_verbatim_quote_becomes_a_suggestion_with_absolute_offsets(small_codebook) -> None:
    [s], rejections = check(small_codebook, proposal(quote="gives us release   time"))
    assert not rejections
    assert s.quote == "gives us\n  release time"
    assert TEXT[s.quote_start - 100 : s.quote_end - 100] == s.quote
    assert (s.quote_start, s.quote_end) == (100 + TEXT.index("gives"), 100 + TEXT.index(" every"))


def test_fabricated_quote_is_rejected(small_codebook) -> None:
    suggestions, [r] = check(small_codebook, proposal(quote="The district gives us a lot of money."))
    assert not suggestions
    assert r.reason == "quote is not verbatim in the chunk" and r.code == "funding"


def test_unknown_code_is_rejected(small_codebook) -> None:
    suggestions, [r] = check(small_codebook, proposal(code="ignore-previous-instructions"))
    assert not suggestions
    assert r.reason == "code 'ignore-previous-instructions' is not in the codebook"


def test_malformed_proposals_are_rejected_not_dropped(small_codebook) -> None:
    suggestions, rejections = check(
        small_codebook,
        proposal(confidence=1.7),
        {"code": "trust", "quote": "We trust our principal."},
        "not even an object",
    )
    assert not suggestions
    assert len(rejections) == 3
    assert all(r.reason.startswith("malformed proposal") for r in rejections)
    assert rejections[1].code == "trust"


def test_a_code_proposed_twice_keeps_the_first(small_codebook) -> None:
    suggestions, [r] = check(small_codebook, proposal(), proposal(quote="gives us"))
    assert [s.quote for s in suggestions] == ["release time every month."]
    assert "more than once" in r.reason


def test_category_codes_are_not_applied(tmp_path) -> None:
    path = tmp_path / "cb.yaml"
    path.write_text(
        "name: n\ndescription: d\ncodes:\n"
        "  - {id: linkage, name: Linkage, definition: any linkage}\n"
        "  - {id: linkage.strength, name: Strength, definition: a strong one, parent: linkage}\n"
    )
    codebook = load_codebook(path)
    coding = ChunkCoding(chunk_id="c1", proposals=[proposal(code="linkage"), proposal(code="linkage.strength")])
    suggestions, [r] = validate_coding(coding, chunk(), codebook, "key")
    assert [s.code for s in suggestions] == ["linkage.strength"]
    assert "is a category" in r.reason


def test_find_verbatim_edge_cases() -> None:
    assert find_verbatim("", "abc") is None
    assert find_verbatim("   ", "abc") is None
    assert find_verbatim("b  c", "a b\n\tc d") == (2, 6)
    assert find_verbatim("B C", "a b c") is None  # case matters: a quote is verbatim
    assert find_verbatim(".", "a b.") is None  # punctuation alone is no evidence
    assert find_verbatim("a", "data a") == (5, 6)  # whole words, not inside "data"
    assert find_verbatim("dat", "data") is None
    assert find_verbatim("a a", "ba a a") == (3, 6)  # a match overlapping a refused one is found
    assert find_verbatim("a (b)*", "x a\n(b)*") == (2, 8)  # regular-expression characters are plain text


def collapsed_search(quote: str, text: str) -> tuple[int, int] | None:
    """The rule spelled out: collapse every run of whitespace in both to one space, find
    the quote as whole words, map the match back to the text's own offsets."""
    wanted = " ".join(quote.split())
    if not any(ch.isalnum() for ch in wanted):
        return None
    collapsed, origin = [], []
    for i, ch in enumerate(text):
        if ch.isspace():
            if not collapsed or collapsed[-1] == " ":
                continue
            ch = " "
        collapsed.append(ch)
        origin.append(i)
    joined = "".join(collapsed)
    found = joined.find(wanted)
    while found >= 0:
        before = joined[found - 1] if found > 0 else " "
        after = joined[found + len(wanted)] if found + len(wanted) < len(joined) else " "
        if not (before.isalnum() and wanted[0].isalnum()) and not (after.isalnum() and wanted[-1].isalnum()):
            return origin[found], origin[found + len(wanted) - 1] + 1
        found = joined.find(wanted, found + 1)
    return None


# few letters, so words and near-misses recur; every kind of white space, punctuation
# and characters a regular expression would read as syntax
ALPHABET = st.sampled_from(
    list("aab.b-a")
    + [" ", "  ", "\n", "\t", "\r\n", "\u00a0", "\u2003", "\x1c", ".", "*", "(", "[", "\\", "$", "é", "1"]
)


@settings(max_examples=400, deadline=None)
@given(text=st.lists(ALPHABET, max_size=40).map("".join), data=st.data())
def test_find_verbatim_follows_the_collapsed_whitespace_rule(text: str, data: st.DataObject) -> None:
    # quotes cut from the text, with their white space changed, and quotes made up
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    spaced = data.draw(st.sampled_from([" ", "\n", "  \t"]))
    for quote in (
        text[start:end],
        spaced.join(text[start:end].split()),
        data.draw(st.lists(ALPHABET, max_size=8).map("".join)),
    ):
        if "..." in quote:
            continue  # an ellipsis stands for words left out: its own test below
        assert find_verbatim(quote, text) == collapsed_search(quote, text), (quote, text)


def test_typography_and_an_ellipsis_match_but_the_stored_quote_is_the_transcripts_own() -> None:
    text = "Ms. Chen: We didn’t get the grant — not this year. I was… I don’t know, it was hard."
    assert text[slice(*find_verbatim("We didn't get the grant - not this year", text))] == (
        "We didn’t get the grant — not this year"
    )
    # words left out, shown by an ellipsis: the span runs from the first word to the last
    assert text[slice(*find_verbatim("We didn't ... not this year.", text))] == (
        "We didn’t get the grant — not this year."
    )
    # within one sentence: an ellipsis does not stitch a quote out of two
    assert find_verbatim("We didn't get the grant ... it was hard.", text) is None
    assert find_verbatim("I love ... rain", "I love my principal. The weather was bad, I hate rain.") is None
    assert find_verbatim("We ... the ... not ... year", text) is None  # four parts: no quote
    # a part is whole words too: "gran" is not "grant"
    assert find_verbatim("We didn't get the gran ... year", text) is None
    assert text[slice(*find_verbatim("I was... I don't know", text))] == "I was… I don’t know"
    assert text[slice(*find_verbatim("We\u00a0didn’t get", text))] == "We didn’t get"
    # case and wording still count
    assert find_verbatim("we didn't get", text) is None
    assert find_verbatim("We did not get the grant", text) is None
    assert find_verbatim("... ...", text) is None


def test_an_ellipsis_on_a_long_repetitive_passage_is_checked_at_once() -> None:
    # a nested search of every gap would take minutes here; each part is looked for a short way on
    assert find_verbatim("a ... a ... zzz", "a " * 3000) is None
    assert find_verbatim("I ... a ... zebra", "I " + "a " * 9000 + "zebra") is None


def test_a_quote_the_model_put_in_quotation_marks_is_the_words_inside(small_codebook) -> None:
    for marked in ('"release time every month."', "“release time every month.”", "'release time every month.'"):
        [s], rejections = check(small_codebook, proposal(quote=marked))
        assert not rejections and s.quote == "release time every month.", marked
    # the marks are only taken off when the quote as given is nowhere: and then the words must be there
    suggestions, [r] = check(small_codebook, proposal(quote='"release time every week."'))
    assert not suggestions and r.reason == "quote is not verbatim in the chunk"


def test_a_quote_across_two_turns_is_not_one_speakers_evidence(small_codebook) -> None:
    text = "Ms. Chen: We were just told things.\nInterviewer: And the principal?\nMs. Chen: She listens."
    two = chunk_of(text, [("Ms. Chen", 10, 35), ("Interviewer", 49, 67), ("Ms. Chen", 78, len(text))])
    codebook = load_codebook(small_codebook)
    coding = ChunkCoding(
        chunk_id="c1",
        proposals=[proposal(quote="just told things. Interviewer: And the"), proposal("trust", "She listens.")],
    )
    [kept], [refused] = validate_coding(coding, two, codebook, "key")
    assert kept.quote == "She listens."
    assert refused.reason == "quote runs across turns (Ms. Chen and Interviewer): evidence is one speaker's words"


def test_a_quote_may_run_on_across_a_documents_paragraphs(small_codebook) -> None:
    text = "The district plan funds release time for\n\nevery lead teacher in the spring."
    document = chunk_of(text, [(None, 0, 40), (None, 42, len(text))])
    coding = ChunkCoding(chunk_id="c1", proposals=[proposal(quote="funds release time for every lead teacher")])
    [kept], rejections = validate_coding(coding, document, load_codebook(small_codebook), "key")
    assert not rejections and kept.quote == "funds release time for\n\nevery lead teacher"
