"""Batch mode of the openai coder: first replies through the OpenAI Batch API, at the batch price.

The Batch API answers within a window of hours, so a run must survive its
process ending: every batch is recorded in the store (`batches`) as soon as it
is created, and the next run with the same coder configuration picks up the
pending batches instead of sending the chunks again.

A completed batch's replies go into the model-call cache under the exact key a
live request would have. The run then codes its chunks as usual: first
attempts are answered from the cache, for free, and go through the same
checks; an invalid reply is retried live with the problems fed back, like any
other.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.coders.calls import NotACompletion, completion_from_json
from pipeline.errors import BatchError
from pipeline.store import BatchRecord, Store, now
from pipeline.suggestion import Usage

if TYPE_CHECKING:
    import openai

MAX_REQUESTS = 50_000
OPEN = ("validating", "in_progress", "finalizing", "cancelling")


def prefill_by_batch(
    store: Store,
    coder: Any,
    codebook: Codebook,
    coder_key: str,
    run_id: str,
    chunks: Sequence[Chunk],
    poll_interval: float = 30.0,
    report: Callable[[str], None] | None = None,
) -> Usage:
    """Send the chunks' first requests as batches (resuming pending ones), wait, and cache the replies.

    `coder` is the openai coder (pipeline/coders/openai_chat.py), which imports this module.
    Returns the usage billed at batch prices, for the run's cost.
    """
    import openai  # loaded only when a batch is sent

    if coder.cache is None:
        raise BatchError("batch mode needs the model-call cache (a store)")
    coder.check_ready()
    client = openai.OpenAI(
        api_key=coder.api_key or "no-key", base_url=coder.base_url, timeout=coder.timeout, max_retries=coder.max_retries
    )
    try:
        pending = _open_batches(store, coder_key)
        covered = {r["chunk_id"] for batch in pending for r in batch.requests.values()}
        todo: list[tuple[str, dict[str, Any], str]] = []
        for chunk in chunks:
            if chunk.id in covered:
                continue
            body, key = coder.request(coder.messages(chunk, codebook), codebook)
            if coder.cache.get(key) is None:
                todo.append((chunk.id, body, key))
        for start in range(0, len(todo), MAX_REQUESTS):
            pending.append(_create(client, store, run_id, coder_key, todo[start : start + MAX_REQUESTS]))
            if report:
                report(f"batch {pending[-1].id} created with {len(todo[start : start + MAX_REQUESTS])} requests")
        usage = Usage()
        for batch in pending:
            usage = usage + _wait_and_ingest(client, store, coder, run_id, batch.id, poll_interval, report)
        return usage
    except openai.APIError as exc:
        # only the message travels on: the exception holds the request, and its headers the key
        raise BatchError(f"the Batch API failed: {type(exc).__name__}: {exc.message}") from None
    finally:
        client.close()


def _open_batches(store: Store, coder_key: str) -> list[BatchRecord]:
    with store.session() as s:
        return list(
            s.scalars(
                select(BatchRecord).where(
                    BatchRecord.coder_key == coder_key,
                    BatchRecord.status.in_(OPEN + ("completed",)),
                    BatchRecord.finished_at.is_(None),
                )
            )
        )


def _create(
    client: openai.OpenAI, store: Store, run_id: str, coder_key: str, requests: list[tuple[str, dict[str, Any], str]]
) -> BatchRecord:
    lines = [
        json.dumps(
            {"custom_id": chunk_id, "method": "POST", "url": "/v1/chat/completions", "body": body}, ensure_ascii=False
        )
        for chunk_id, body, _ in requests
    ]
    upload = client.files.create(
        file=("qcode-batch.jsonl", io.BytesIO(("\n".join(lines) + "\n").encode("utf-8"))),
        purpose="batch",
    )
    batch = client.batches.create(
        input_file_id=upload.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"qcode_run": run_id},
    )
    record = BatchRecord(
        id=batch.id,
        run_id=run_id,
        coder_key=coder_key,
        status=batch.status,
        input_file_id=upload.id,
        output_file_id=None,
        requests={chunk_id: {"chunk_id": chunk_id, "key": key} for chunk_id, _, key in requests},
        created_at=now(),
        finished_at=None,
    )
    with store.session() as s:
        s.add(record)
    return record


def _wait_and_ingest(
    client: openai.OpenAI,
    store: Store,
    coder: Any,
    run_id: str,
    batch_id: str,
    poll_interval: float,
    report: Callable[[str], None] | None,
) -> Usage:
    import openai

    while True:
        try:
            batch = client.batches.retrieve(batch_id)
        except openai.NotFoundError:
            # the provider no longer knows it (expired, deleted, another server): code its chunks live
            with store.session() as s:
                record = s.get_one(BatchRecord, batch_id)
                record.status, record.finished_at = "lost", now()
            if report:
                report(f"batch {batch_id} is unknown to the server; its chunks are coded live")
            return Usage()
        with store.session() as s:
            s.get_one(BatchRecord, batch_id).status = batch.status
        if batch.status == "completed":
            break
        if batch.status in ("failed", "expired", "cancelled"):
            with store.session() as s:
                s.get_one(BatchRecord, batch_id).finished_at = now()
            if report:
                report(f"batch {batch_id} {batch.status}; its chunks are coded live")
            return Usage()
        time.sleep(poll_interval)

    with store.session() as s:
        record = s.get_one(BatchRecord, batch_id)
        requests = dict(record.requests)
    usage = Usage()
    entries = []
    if batch.output_file_id:
        for line in client.files.content(batch.output_file_id).text.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            request = requests.get(item.get("custom_id"))
            response = item.get("response") or {}
            if request is None or response.get("status_code") != 200:
                continue  # not cached: the chunk is coded live, and the failure is not lost
            try:
                completion = completion_from_json(response["body"], 0.0)
            except NotACompletion as exc:
                usage = usage + exc.usage  # paid for all the same; the chunk is coded live
                continue
            usage = usage + completion.usage
            entries.append(
                (
                    request["key"],
                    coder.endpoint,
                    coder.model,
                    {"batch": batch_id, "chunk_id": request["chunk_id"]},
                    completion,
                )
            )
    coder.cache.put(entries)
    # the provider keeps uploaded files until deleted, and these hold transcript text
    for file_id in (batch.input_file_id, batch.output_file_id, getattr(batch, "error_file_id", None)):
        if file_id:
            try:
                client.files.delete(file_id)
            except openai.APIError:
                pass  # a file the provider already dropped
    with store.session() as s:
        record = s.get_one(BatchRecord, batch_id)
        record.output_file_id = batch.output_file_id
        record.finished_at = now()
        record.run_id = run_id
        record.usage = usage.model_dump()
    if report:
        report(f"batch {batch_id} completed: {len(entries)} replies")
    return usage
