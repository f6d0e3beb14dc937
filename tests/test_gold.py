"""Gold codes on a CSV of open-ended responses: each passage is named by its file and the response's
id, and a passage that could lie in several places is refused with the places named."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import SMALL_CODEBOOK, write

from pipeline.codebook import load_codebook
from pipeline.errors import SuiteError
from pipeline.ingest import CsvOptions
from pipeline.ingest.gold import Gold, read_gold, read_transcripts

RESPONSES = """\
respondent_id,comment,school
r1,Brilliant,north
r2,Brilliant,south
r3,The coach helped me a lot. Brilliant,north
r4,6,south
r5,6,north
"""


def read(tmp_path: Path, gold: str, responses: str = RESPONSES, id_column: str | None = None) -> Gold:
    folder = tmp_path / "survey"
    write(folder / "answers.csv", responses)
    write(folder / "notes.txt", "Ana: The district gave us a grant.\nBen: Brilliant.\n")
    codebook = write(tmp_path / "codebook.yaml", SMALL_CODEBOOK)
    codes = write(tmp_path / "gold.csv", gold)
    transcripts = read_transcripts("gold.csv", folder, CsvOptions(id_column=id_column))
    return read_gold([codes], transcripts, folder, load_codebook(codebook), codebook, min_coders=1)


def response_of(gold: Gold, transcript_id: str) -> str | None:
    return next(t.response_id for t in gold.transcripts if t.id == transcript_id)


def test_the_id_names_the_response_a_short_quote_or_offsets_belong_to(tmp_path: Path) -> None:
    gold = read(
        tmp_path,
        "file,id,coder,code,quote,start,end\n"
        "answers.csv,r2,ana,trust,Brilliant,,\n"
        "answers.csv,r5,ana,funding,,0,1\n"
        "answers.csv,r3,ana,trust,Brilliant,,\n"
        "answers.csv,,ben,,,,\n",
    )
    assert [(response_of(gold, s.transcript_id), s.code, s.start, s.end) for s in gold.spans] == [
        ("r2", "trust", 0, 9),
        ("r5", "funding", 0, 1),
        ("r3", "trust", 27, 36),
    ]
    # a row of a file still says its coder coded all of it: every response of the CSV
    assert len({t for coder, t in gold.coverage if coder == "ben"}) == 5


def test_a_csv_without_an_id_column_numbers_its_responses(tmp_path: Path) -> None:
    gold = read(
        tmp_path, "file,id,coder,code,quote\nanswers.csv,2,ana,trust,Brilliant\n", "comment\nBrilliant\nBrilliant\n"
    )
    assert [response_of(gold, s.transcript_id) for s in gold.spans] == ["2"]


@pytest.mark.parametrize(
    ("row", "says"),
    [
        # a quote that more than one response holds: never the first one silently
        ("answers.csv,,ana,trust,Brilliant,,", "the quote 'Brilliant' occurs in responses r1, r2, r3 of answers.csv"),
        ("answers.csv,,ana,trust,6,0,1", "the quote at offsets 0:1 fits responses r4, r5 of answers.csv"),
        ("answers.csv,,ana,trust,,0,1", "answers.csv holds 5 responses (one per CSV row); name the response"),
        (
            "answers.csv,r33,ana,trust,Brilliant,,",
            "no response with the id 'r33' in answers.csv (5 responses; did you mean 'r3'?)",
        ),
        ("answers.csv,r1,ana,trust,,0,40", "offsets 0:40 are outside answers.csv (response r1) (9 characters"),
        ("answers.csv,r1,ana,trust,coach,,", "the quote is not in answers.csv (response r1): 'coach'"),
        ("notes.txt,7,ana,trust,Brilliant,,", "the id '7' names a response of a CSV file, and notes.txt is not one"),
    ],
)
def test_a_passage_that_fits_several_places_or_none_is_an_error_naming_them(
    tmp_path: Path, row: str, says: str
) -> None:
    with pytest.raises(SuiteError) as error:
        read(tmp_path, "file,id,coder,code,quote,start,end\nanswers.csv,r1,ana,,,,\n" + row + "\n")
    assert str(error.value).startswith(f"{tmp_path / 'gold.csv'}: line 3: ")
    assert says in str(error.value)
