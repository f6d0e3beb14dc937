"""The learned coder's review loop on the shared AnnoMI set (issue 14): pilot codes, train, code,
review the uncertain, train again.

    python benchmarks/review_loop.py [--data ../shared/data/annomi-train] [--pilot 20] [--reviews 300]
                                     [--learner auto|linear|finetuned]

The 126 transcripts are split by name: every fourth is held out to measure on, the first `--pilot`
of the rest are the pilot (their codes.csv codes are the team's first codes), and the others are
new interviews. Each step runs as a team would run it, in one SQLite store:

1. `train` on the pilot's codes;
2. `run --coder learned --unit turn` on the new interviews;
3. a reviewer decides `--reviews` suggestions of the queue, taking them in one of three orders:
   `uncertainty` (`qcode queue --order uncertainty`), `confidence` (lowest first, the default) and
   `random`; the reviewer's decisions are the annotator's codes (accept when the annotator gave the
   code, change it to the annotator's code, or reject when they gave none);
4. `train` again, on the pilot and the decisions.

After each model, the learned coder codes the held-out transcripts and its codes are compared with
the annotator's (Cohen's kappa, each turn's one code or none a category, with a 95% interval by a
bootstrap over transcripts). For scale, the last line trains on every code of the pilot and the new
interviews, as if all of them had been coded by hand. Prints one JSON object. Without the data
folder it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from benchmarks.learned import DEFAULT_DATA, read_shared  # noqa: E402
from pipeline.chunk import Units  # noqa: E402
from pipeline.codebook import Codebook  # noqa: E402
from pipeline.coders.learned import LearnedCoder  # noqa: E402
from pipeline.learn.examples import Example, from_spans, from_store  # noqa: E402
from pipeline.learn.train import TrainingPlan, train_model  # noqa: E402
from pipeline.review.decisions import DecisionRequest, decide  # noqa: E402
from pipeline.review.queued import QueueFilter, queue_items  # noqa: E402
from pipeline.review.reviewers import Reviewer, add_reviewer  # noqa: E402
from pipeline.run.corpus import code_corpus  # noqa: E402
from pipeline.run.request import RunRequest  # noqa: E402
from pipeline.store import ChunkRecord, ReviewerRecord, Store  # noqa: E402

TURNS = Units(unit="turn")
ORDERS = ("uncertainty", "confidence", "random")


def one_code(codes: set[str], order: list[str]) -> str:
    return next((c for c in order if c in codes), "")


def measure(store: Store, codebook: Codebook, version: str, held_out: list[Example]) -> dict[str, object]:
    """The model's agreement with the annotator on the held-out turns."""
    coder = LearnedCoder(learned_model=version)
    coder.use_store(store)
    coder.prepare(codebook)
    order = [c.id for c in codebook.leaves]
    found: list[str] = []
    for at in range(0, len(held_out), coder.batch_size):
        for coding in coder.code([e.unit for e in held_out[at : at + coder.batch_size]], codebook):
            found.append(one_code({p.code for p in coding.proposals}, order))
    truth = [one_code(e.codes, order) for e in held_out]
    groups = [e.unit.transcript_id for e in held_out]
    kappa = _kappa(truth, found)
    rng = np.random.default_rng(0)
    names = sorted(set(groups))
    rows_of = {g: [i for i, x in enumerate(groups) if x == g] for g in names}
    draws = []
    for _ in range(1000):
        rows = [i for g in rng.choice(names, len(names)) for i in rows_of[g]]
        draws.append(_kappa([truth[i] for i in rows], [found[i] for i in rows]))
    return {"cohen_kappa": round(kappa, 3), "ci95": [round(float(np.percentile(draws, q)), 3) for q in (2.5, 97.5)]}


def _kappa(a: list[str], b: list[str]) -> float:
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b))


def review(
    store: Store, run_id: str, reviewer: Reviewer, truth: dict[tuple[str, int, int], set[str]], order: str, n: int
) -> dict[str, int]:
    """Decide `n` queued suggestions as the annotator would, taken in `order`."""
    if order == "random":
        items = queue_items(store, [run_id], QueueFilter(), limit=100_000)
        random.Random(0).shuffle(items)
        items = items[:n]
    else:
        items = queue_items(store, [run_id], QueueFilter(order=order), limit=n)
    verdicts = {"accept": 0, "change": 0, "reject": 0}
    with store.session() as s:
        spans = {
            r.id: (r.transcript_id, r.start, r.end)
            for r in s.scalars(select(ChunkRecord).where(ChunkRecord.id.in_([i.chunk_id for i in items])))
        }
    for item in items:
        said = truth.get(spans[item.chunk_id], set())
        if item.code in said:
            request = DecisionRequest(verdict="accept")
        elif said:
            request = DecisionRequest(verdict="change", code=sorted(said)[0], reason="the annotator's code")
        else:
            request = DecisionRequest(verdict="reject", reason="the annotator gave no code")
        decide(store, reviewer, item.id, 1, request)
        verdicts[request.verdict] += 1
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pilot", type=int, default=20)
    parser.add_argument("--reviews", type=int, default=300)
    parser.add_argument("--learner", default="auto", choices=("auto", "linear", "finetuned"))
    args = parser.parse_args()
    plan = TrainingPlan(units=TURNS, learner=args.learner)
    shared = read_shared(args.data, "benchmarks/review_loop.py")
    if shared is None:
        return
    codebook_path, codebook, gold = shared
    names = sorted(t.source_name for t in gold.transcripts)
    test_names = set(names[::4])
    rest = [n for n in names if n not in test_names]
    pilot_names, new_names = set(rest[: args.pilot]), rest[args.pilot :]

    def examples(chosen: set[str]) -> list[Example]:
        return from_spans(
            [t for t in gold.transcripts if t.source_name in chosen],
            gold.spans,
            gold.coverage,
            TURNS,
            codebook.applicable_ids(),
            "gold",
        )

    pilot, held_out, new = examples(pilot_names), examples(test_names), examples(set(new_names))
    truth = {(e.unit.transcript_id, e.unit.start, e.unit.end): e.codes for e in new}
    out: dict[str, object] = {
        "transcripts": {"pilot": len(pilot_names), "new": len(new_names), "held_out": len(test_names)},
        "turns": {"pilot": len(pilot), "new": len(new), "held_out": len(held_out)},
    }
    with tempfile.TemporaryDirectory() as folder:
        first_db = Path(folder) / "loop.db"
        store = Store(str(first_db))
        began = time.perf_counter()
        card = train_model(store, codebook, pilot, plan)
        out["pilot"] = {
            "model": card.model,
            "train_seconds": round(time.perf_counter() - began, 1),
            "held_out": measure(store, codebook, card.model, held_out),
        }
        began = time.perf_counter()
        summary = code_corpus(
            RunRequest(
                paths=[str(args.data / "transcripts" / n) for n in new_names],
                codebook=str(codebook_path),
                db=str(first_db),
                coder="learned",
                coder_options={"learned_model": card.model},
                unit="turn",
            )
        )
        out["run"] = {
            "seconds": round(time.perf_counter() - began, 1),
            "suggestions": summary.suggestions,
            "accepted": summary.accepted,
            "queued": summary.queued,
        }
        store.engine.dispose()
        for order in ORDERS:
            db = Path(folder) / f"{order}.db"
            shutil.copy(first_db, db)
            arm = Store(str(db))
            add_reviewer(arm, "annotator")
            with arm.session() as s:
                record = s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == "annotator"))
                assert record is not None
                reviewer = Reviewer(id=record.id, name=record.name, role=record.role)
            verdicts = review(arm, summary.run_id, reviewer, truth, order, args.reviews)
            began = time.perf_counter()
            decided = from_store(arm, codebook, TURNS).examples
            retrained = train_model(arm, codebook, pilot + decided, plan)
            out[f"after_{order}"] = {
                "model": retrained.model,
                "verdicts": verdicts,
                "train_seconds": round(time.perf_counter() - began, 1),
                "held_out": measure(arm, codebook, retrained.model, held_out),
            }
            arm.engine.dispose()
        store = Store(str(first_db))
        everything = train_model(store, codebook, pilot + new, plan)
        out["every_code_by_hand"] = {
            "model": everything.model,
            "held_out": measure(store, codebook, everything.model, held_out),
        }
        store.engine.dispose()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
