from __future__ import annotations

import zipfile
from pathlib import Path

import docx
import pytest
from fakes import EXAMPLES, write

from pipeline.ingest import CsvOptions, IngestError, Source, discover, read_source
from pipeline.transcript import parse_turns


def read(path: Path, **csv: str) -> list:
    return read_source(Source(path, path.parent), CsvOptions(**csv))


def speakers(transcript) -> list:
    return [t.speaker for t in transcript.turns]


def spoken(transcript) -> list[str]:
    return [transcript.turn_text(t) for t in transcript.turns]


def test_plain_turns_with_continuation_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.txt", "Interviewer: How is it going?\nMs. Chen: Well.\nWe meet weekly.\n\nInterviewer: Thanks.\n"
    )
    [t] = read(path)
    assert speakers(t) == ["Interviewer", "Ms. Chen", "Interviewer"]
    assert spoken(t)[1] == "Well.\nWe meet weekly."
    assert t.text[t.turns[1].start : t.turns[1].end] == "Ms. Chen: Well.\nWe meet weekly."
    assert t.format == "text" and t.encoding == "utf-8"


def test_a_colon_inside_speech_is_not_a_speaker() -> None:
    text = "Interviewer: Tell me.\nDr. Ramos: Sure.\nIn short: it works.\nInterviewer: Good.\nDr. Ramos: Yes."
    turns = parse_turns(text)
    assert [t.speaker for t in turns] == ["Interviewer", "Dr. Ramos", "Interviewer", "Dr. Ramos"]
    assert text[turns[1].text_start : turns[1].end] == "Sure.\nIn short: it works."


def test_bold_markdown_turns_and_front_matter(tmp_path: Path) -> None:
    path = write(
        tmp_path / "b.md",
        "---\ndistrict: Harbor\nrole: principal\n---\n# Interview\n\n**Interviewer:** Hello.\n\n**Dr. Ramos**: Hi there.\n",
    )
    [t] = read(path)
    assert t.metadata == {"district": "Harbor", "role": "principal", "source_type": "interview"}
    assert t.source_type_inferred
    assert speakers(t) == [None, "Interviewer", "Dr. Ramos"] or speakers(t) == ["Interviewer", "Dr. Ramos"]
    assert spoken(t)[-2:] == ["Hello.", "Hi there."]
    assert not t.text.startswith("---")


def test_timestamped_turns(tmp_path: Path) -> None:
    path = write(tmp_path / "c.txt", "[00:01:02] Interviewer: First?\n[00:01:10] Mr. Ortiz: Second.\n")
    [t] = read(path)
    assert [(x.speaker, x.timestamp) for x in t.turns] == [("Interviewer", "00:01:02"), ("Mr. Ortiz", "00:01:10")]
    assert spoken(t) == ["First?", "Second."]


def test_docx_paragraph_turns(tmp_path: Path) -> None:
    document = docx.Document()
    for name, words in [("Interviewer", "What changed?"), ("Ms. Brooks", "The district funds release time.")]:
        paragraph = document.add_paragraph()
        paragraph.add_run(f"{name}:").bold = True
        paragraph.add_run(f" {words}")
    document.save(tmp_path / "d.docx")
    [t] = read(tmp_path / "d.docx")
    assert speakers(t) == ["Interviewer", "Ms. Brooks"]
    assert spoken(t) == ["What changed?", "The district funds release time."]
    assert t.format == "docx"


VTT = """WEBVTT

00:00:01.000 --> 00:00:03.000
<v Interviewer>How does the district
communicate with you?

00:00:03.500 --> 00:00:05.000
<v Dr. Ramos>Mostly by email.

00:00:05.000 --> 00:00:07.000
<v Dr. Ramos>And monthly meetings.

00:00:07.000 --> 00:00:08.000
<v Interviewer>Thanks.
"""


def test_vtt_voices_merge_consecutive_cues(tmp_path: Path) -> None:
    [t] = read(write(tmp_path / "e.vtt", VTT))
    assert speakers(t) == ["Interviewer", "Dr. Ramos", "Interviewer"]
    assert spoken(t) == [
        "How does the district communicate with you?",
        "Mostly by email. And monthly meetings.",
        "Thanks.",
    ]
    assert t.turns[1].timestamp == "00:00:03.500"


SRT = """1
00:00:01,000 --> 00:00:02,000
Interviewer: Who brokers information?

2
00:00:02,500 --> 00:00:04,000
Ms. Chen: I do.

3
00:00:04,000 --> 00:00:05,000
Ms. Chen: Every week.
"""


def test_srt_speaker_prefixes_merge(tmp_path: Path) -> None:
    [t] = read(write(tmp_path / "f.srt", SRT))
    assert speakers(t) == ["Interviewer", "Ms. Chen"]
    assert spoken(t) == ["Who brokers information?", "I do. Every week."]


def test_csv_one_transcript_per_response_with_detected_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "q.csv",
        "respondent_id,district,response\nR1,Harbor,The district listens to teacher leaders.\nR2,Valley,\nR3,Valley,We lack release time for planning.\n",
    )
    ts = read(path)
    assert [t.text for t in ts] == ["The district listens to teacher leaders.", "We lack release time for planning."]
    assert ts[0].metadata == {"district": "Harbor", "respondent_id": "R1", "source_type": "questionnaire"}
    assert ts[1].turns[0].speaker == "R3"
    assert len({t.id for t in ts}) == 2


def test_csv_columns_by_flag_and_by_content(tmp_path: Path) -> None:
    path = write(
        tmp_path / "q.csv",
        "who,site,thoughts\nA,North,Our coach meets with us every single week.\nB,South,Nobody explains the new district plan to us.\n",
    )
    by_content = read(path)
    assert [t.text for t in by_content][0].startswith("Our coach")
    by_flag = read(path, id_column="who", text_column="site")
    assert [t.text for t in by_flag] == ["North", "South"]
    assert by_flag[0].metadata["thoughts"].startswith("Our coach")
    with pytest.raises(IngestError, match="no column 'nope'"):
        read(path, text_column="nope")


def test_manifest_and_front_matter_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    write(folder / "manifest.csv", "file,district,role\nsub/a.txt,Harbor,principal\nb.md,Valley,teacher leader\n")
    write(folder / "sub" / "a.txt", "Interviewer: Hi.\nP: Hello.\n")
    write(folder / "b.md", "---\nrole: district administrator\nschool: Mesa\n---\nInterviewer: Hi.\nQ: Hello.\n")
    sources, errors = discover([folder])
    assert not errors
    assert [s.path.name for s in sources] == ["b.md", "a.txt"]
    found = {s.path.name: read_source(s)[0].metadata for s in sources}
    assert found["a.txt"] == {"district": "Harbor", "role": "principal", "source_type": "interview"}
    assert found["b.md"] == {
        "district": "Valley",
        "role": "district administrator",
        "school": "Mesa",
        "source_type": "interview",
    }


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_non_utf8_text_is_decoded_and_noted(tmp_path: Path, encoding: str) -> None:
    words = (
        "Interviewer: ¿Qué pasó?\nJosé: The district’s plan — it helped.\n"
        if encoding == "cp1252"
        else "Interviewer: Où?\nJosé: À l'école, très bien.\n"
    )
    [t] = read(write(tmp_path / "w.txt", words, encoding=encoding))
    assert "José" in t.text
    assert t.encoding in ("cp1252", "latin_1", "iso8859_1", "iso8859_15", "cp1250")
    assert any("decoded from" in n for n in t.notes)
    if encoding == "cp1252":
        assert "district’s plan — it" in t.text


def test_crlf_and_bom_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_bytes(b"\xef\xbb\xbfInterviewer: A?\r\nMs. Chen: B.\r\n")
    [t] = read(path)
    assert t.text == "Interviewer: A?\nMs. Chen: B.\n"
    assert spoken(t) == ["A?", "B."]


# --- bad input: one clear error naming the file ---------------------------------


def _error(path: Path, **csv: str) -> str:
    with pytest.raises(IngestError) as caught:
        read(path, **csv)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(str(path))
    return caught.value.message


def test_empty_file(tmp_path: Path) -> None:
    assert _error(write(tmp_path / "e.txt", "  \n")) == "empty file"


def test_binary_file_named_txt(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_bytes(bytes(range(256)) * 8)
    assert "binary" in _error(path)


def test_corrupt_docx(tmp_path: Path) -> None:
    path = tmp_path / "c.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert "not a readable .docx" in _error(path)
    other = tmp_path / "z.docx"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hello.txt", "a zip, but not a Word document")
    assert "not a readable .docx" in _error(other)


def test_vtt_with_broken_timestamp(tmp_path: Path) -> None:
    path = write(tmp_path / "b.vtt", VTT.replace("00:00:03.500 --> 00:00:05.000", "00:00:0x.500 --> 00:00:05.000"))
    message = _error(path)
    assert "line 7" in message and "timestamp" in message


def test_srt_with_broken_timestamp(tmp_path: Path) -> None:
    assert "timestamp" in _error(write(tmp_path / "b.srt", SRT.replace("00:00:02,500", "00:00:2,5OO")))


def test_csv_without_text_column(tmp_path: Path) -> None:
    message = _error(write(tmp_path / "n.csv", "id,score,site\n1,4,North\n2,5,South\n"))
    assert "no text column" in message and "--text-column" in message


def test_unsupported_and_missing_paths(tmp_path: Path) -> None:
    pages = write(tmp_path / "x.pages", "a Pages document")
    sources, errors = discover([pages, tmp_path / "missing.txt"])
    assert not sources
    assert [e.message for e in errors][1] == "no such file or folder"
    assert "unsupported file type '.pages'" in errors[0].message


def test_every_bundled_example_reads() -> None:
    sources, errors = discover([EXAMPLES / "transcripts"])
    assert not errors
    suffixes = {s.path.suffix for s in sources}
    assert {".txt", ".md", ".docx", ".vtt", ".srt", ".csv", ".pdf"} <= suffixes
    kinds: dict[str, int] = {}
    for source in sources:
        transcripts = read_source(source)
        assert transcripts
        for t in transcripts:
            assert t.metadata.get("district"), f"{source.path.name} has no district"
            kind = t.metadata["source_type"]
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "interview":
                assert len({x.speaker for x in t.turns if x.speaker}) >= 2
            else:  # a questionnaire's answer, the district's plan, the observation notes: no interviewer
                assert len({x.speaker for x in t.turns if x.speaker}) <= 1
    assert kinds == {"interview": 11, "questionnaire": 12, "document": 1, "observation": 1}


def test_text_in_another_script_is_not_taken_for_windows_1252(tmp_path: Path) -> None:
    words = "Интервьюер: Как работает округ?\nАнна: Округ выделяет время для совместного планирования учителей.\n"
    [t] = read(write(tmp_path / "ru.txt", words, encoding="cp1251"))
    assert "Округ выделяет время" in t.text


def test_docx_tables_are_read_in_order(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("Interview 7")
    table = document.add_table(rows=2, cols=2)
    for row, (name, words) in zip(
        table.rows, [("Interviewer", "What changed?"), ("Ms. Brooks", "We got release time.")]
    ):
        row.cells[0].text, row.cells[1].text = name, words
    document.add_paragraph("Interviewer: Thank you.")
    document.save(tmp_path / "t.docx")
    [t] = read(tmp_path / "t.docx")
    assert speakers(t) == [None, "Interviewer", "Ms. Brooks", "Interviewer"]
    assert spoken(t)[2] == "We got release time."


def test_files_of_one_name_in_two_folders_stay_apart(tmp_path: Path) -> None:
    for district in ("harbor", "valley"):
        write(
            tmp_path / district / "responses.csv",
            "id,response\n1,The district office gives us time to plan together.\n",
        )
        write(tmp_path / district / "manifest.csv", f"file,district\nresponses.csv,{district}\n")
    sources, _ = discover([tmp_path])
    transcripts = [t for s in sources for t in read_source(s)]
    assert len({t.id for t in transcripts}) == 2
    assert sorted((t.source_name, t.metadata["district"]) for t in transcripts) == [
        ("harbor/responses.csv", "harbor"),
        ("valley/responses.csv", "valley"),
    ]


def test_semicolon_and_tab_delimited_csv(tmp_path: Path) -> None:
    for name, sep in (("semi.csv", ";"), ("tabs.csv", "\t")):
        path = write(
            tmp_path / name, f"id{sep}school{sep}response\n1{sep}Mesa{sep}The district helps us, mostly, with time.\n"
        )
        [t] = read(path)
        assert t.text == "The district helps us, mostly, with time."
        assert t.metadata == {"school": "Mesa", "id": "1", "source_type": "questionnaire"}


def test_speaker_labels_ids_notes_and_short_interviewer_labels() -> None:
    text = "I: How does it work?\np1: We meet weekly.\nNote: this part was inaudible.\nI: And then?\np1: Then we plan."
    turns = parse_turns(text)
    assert [t.speaker for t in turns] == ["I", "p1", "I", "p1"]
    assert text[turns[1].text_start : turns[1].end] == "We meet weekly.\nNote: this part was inaudible."


def test_front_matter_that_is_not_yaml_is_one_line_saying_where(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "---\ndistrict: North\nschool: [unclosed\n---\nMs. Chen: hello.\n")
    with pytest.raises(IngestError) as caught:
        read_source(Source(path, tmp_path))
    assert (
        caught.value.message == "front matter is not valid YAML at line 4: expected ',' or ']', but got '<stream end>'"
    )
