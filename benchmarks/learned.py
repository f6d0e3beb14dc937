"""The learned coder on the shared AnnoMI set: what its card claims, what held-out transcripts show,
and what training and coding cost on this machine (issues 14 and 22).

    python benchmarks/learned.py [--data ../shared/data/annomi-train] [--learner auto|linear|finetuned]
                                 [--skip full,pilot,small]

Reads the 126 human-coded counselling transcripts and their codes (`codes.csv`, passages), cut into
speaker turns. Each part works in a fresh SQLite store (nothing cached from before), and prints
what it measured as one JSON object:

- `full`: `qcode train` on every transcript (grouped cross-validation by transcript; `auto` tries
  both learners): seconds, each learner's single-label kappa over all turns with its interval, the
  card per code (units scored, kappa), peak memory. Then the stored model codes 2,000 turns in a
  store that has none of their embeddings: turns coded per second.
- `pilot`: a pilot of 10 transcripts trains a model (seeded draw), which codes 30 other
  transcripts: its kappa there against the annotator (all turns, one code or none each; interval by
  transcript) beside what its card claimed.
- `small`: the seconds to train on 200 turns (the first transcripts of the draw).

Without the data folder it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.chunk import Units  # noqa: E402
from pipeline.codebook import Codebook, load_codebook  # noqa: E402
from pipeline.coders.learned import LearnedCoder  # noqa: E402
from pipeline.ingest import CsvOptions  # noqa: E402
from pipeline.ingest.gold import Gold, read_gold, read_transcripts  # noqa: E402
from pipeline.learn.card import category_agreement  # noqa: E402
from pipeline.learn.examples import Example, from_spans  # noqa: E402
from pipeline.learn.train import TrainingPlan, train_model  # noqa: E402
from pipeline.store import LearnedModelRecord, Store  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "annomi-train"
TURNS = Units(unit="turn")


def read_shared(data: Path, script: str) -> tuple[Path, Codebook, Gold] | None:
    """The shared set's codebook (its path too) and codes over its transcripts; None, said, when absent."""
    if not (data / "codes.csv").is_file():
        print(f"{script}: no data at {data} (codes.csv, codebook.yaml, transcripts/): skipped")
        return None
    codebook_path = data / "codebook.yaml"
    codebook = load_codebook(codebook_path)
    transcripts = read_transcripts(str(data), data / "transcripts", CsvOptions())
    return (
        codebook_path,
        codebook,
        read_gold([data / "codes.csv"], transcripts, data / "transcripts", codebook, codebook_path),
    )


def code_with(store: Store, codebook: Codebook, examples: list[Example]) -> list[set[str]]:
    """The codes the store's newest learned model gives these units."""
    coder = LearnedCoder()
    coder.use_store(store)
    coder.prepare(codebook)
    units = [e.unit for e in examples]
    found: list[set[str]] = []
    for at in range(0, len(units), coder.batch_size):
        for coding in coder.code(units[at : at + coder.batch_size], codebook):
            found.append({p.code for p in coding.proposals})
    return found


def agreement(codebook: Codebook, examples: list[Example], coded: list[set[str]]) -> dict[str, object]:
    """Single-label kappa over every turn, each its one code or none, interval by transcript."""
    codes = [c.id for c in codebook.leaves]
    where = {c: k for k, c in enumerate(["", *codes])}

    def one(found: set[str]) -> int:
        return where[next((c for c in codes if c in found), "")]

    return category_agreement(
        [one(c) for c in coded], [one(e.codes) for e in examples], [e.unit.transcript_id for e in examples], len(where)
    ).model_dump(include={"cohen_kappa", "cohen_kappa_ci95"})


def full(codebook: Codebook, examples: list[Example], plan: TrainingPlan, folder: Path) -> dict[str, object]:
    store = Store(str(folder / "full.db"))
    began = time.perf_counter()
    card = train_model(store, codebook, examples, plan)
    seconds = time.perf_counter() - began
    # a store with the model and none of the embeddings: coding as a new run over new transcripts would
    fresh = Store(str(folder / "fresh.db"))
    with store.session() as s, fresh.session() as f:
        for record in s.scalars(select(LearnedModelRecord)).all():
            s.expunge(record)
            f.merge(record)
    sample = examples[:2000]
    began = time.perf_counter()
    code_with(fresh, codebook, sample)
    coding = time.perf_counter() - began
    for each in (store, fresh):
        each.engine.dispose()
    return {
        "turns": card.units,
        "transcripts": card.transcripts,
        "train_seconds": round(seconds, 1),
        "learner": card.learner,
        "learners": [f.model_dump() for f in card.learners],
        "overall": card.overall.model_dump(include={"cohen_kappa", "cohen_kappa_ci95"}) if card.overall else None,
        "codes": {c.code: {"units_scored": c.units_scored, "cohen_kappa": c.cv.cohen_kappa} for c in card.codes},
        "coded_turns": len(sample),
        "turns_coded_per_second": round(len(sample) / coding, 1),
    }


def draw(examples: list[Example]) -> list[str]:
    """The transcripts in a seeded order: the pilot and the others it is measured on."""
    names = sorted({e.unit.transcript_id for e in examples})
    return [names[i] for i in np.random.default_rng(0).permutation(len(names))]


def pilot(codebook: Codebook, examples: list[Example], plan: TrainingPlan, folder: Path) -> dict[str, object]:
    order = draw(examples)
    trained_on, measured_on = set(order[:10]), set(order[10:40])
    training = [e for e in examples if e.unit.transcript_id in trained_on]
    held = [e for e in examples if e.unit.transcript_id in measured_on]
    store = Store(str(folder / "pilot.db"))
    began = time.perf_counter()
    card = train_model(store, codebook, training, plan)
    seconds = time.perf_counter() - began
    coded = code_with(store, codebook, held)
    store.engine.dispose()
    return {
        "trained_on": {"transcripts": 10, "turns": len(training), "seconds": round(seconds, 1)},
        "card": card.overall.model_dump(include={"cohen_kappa", "cohen_kappa_ci95"}) if card.overall else None,
        "learner": card.learner,
        "learners": [f.model_dump() for f in card.learners],
        "measured_on": {"transcripts": 30, "turns": len(held)},
        "held_out": agreement(codebook, held, coded),
    }


def small(codebook: Codebook, examples: list[Example], plan: TrainingPlan, folder: Path) -> dict[str, object]:
    chosen: list[Example] = []
    for name in draw(examples):
        chosen += [e for e in examples if e.unit.transcript_id == name]
        if len(chosen) >= 200:
            break
    chosen = chosen[:200]
    store = Store(str(folder / "small.db"))
    began = time.perf_counter()
    card = train_model(store, codebook, chosen, plan)
    seconds = time.perf_counter() - began
    store.engine.dispose()
    return {
        "turns": len(chosen),
        "train_seconds": round(seconds, 1),
        "learner": card.learner,
        "learners": [f.model_dump() for f in card.learners],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--learner", default="auto", choices=("auto", "linear", "finetuned"))
    parser.add_argument("--skip", default="", help="parts to leave out, comma-separated: full, pilot, small")
    args = parser.parse_args()
    shared = read_shared(args.data, "benchmarks/learned.py")
    if shared is None:
        return
    _, codebook, gold = shared
    examples = from_spans(gold.transcripts, gold.spans, gold.coverage, TURNS, codebook.applicable_ids(), "gold")
    plan = TrainingPlan(units=TURNS, learner=args.learner)
    skipped = {s.strip() for s in args.skip.split(",") if s.strip()}
    found: dict[str, object] = {"learner": args.learner}
    folder = Path(tempfile.mkdtemp(prefix="qcode-learned-"))
    try:
        for name, part in (("small", small), ("pilot", pilot), ("full", full)):
            if name not in skipped:
                found[name] = part(codebook, examples, plan, folder)
                print(f"{name}: done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    found["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
