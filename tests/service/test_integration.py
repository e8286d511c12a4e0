"""The wired service: a capture feeds the trace, the DSCSA checks and the audit ledger."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from pytest_aiohttp import AiohttpClient

from epcis.event_hash import event_hash, ignored_fields
from epcis.model import DocumentHead
from epcis.reading import iter_document
from service.app import create_app
from service.capture_hooks import CHUNK, CommittedBatch, HookRunner
from service.checkpoints import Checkpoint, verify_checkpoint
from service.keys import load_public_key
from service.ledger import leaf_data
from service.ledger_records import event_digest
from service.merkle import leaf_hash, verify_consistency, verify_inclusion
from service.settings import Settings
from service.state import STORE
from service.store import Visibility
from tests.service.conftest import PHARMA_EXAMPLE, Client, bearer, capture

ROOT = Path(__file__).resolve().parents[2]
SHIPMENT = ROOT / "fixtures" / "epcis" / "dscsa-shipment-1.2.xml"
SERIAL = "urn:epc:id:sgtin:030001.0012345.1001"


def _hashes(path: Path) -> list[str]:
    with path.open("rb") as handle:
        items = iter_document(handle)
        head = next(items)
        assert isinstance(head, DocumentHead)
        ignore = ignored_fields(head)
        return [event_hash(event, ignore=ignore) for event in items]  # type: ignore[arg-type]


async def _checkpoint(client: Client, operator: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/ledger/checkpoints", headers=operator)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def _signed(body: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        body["treeSize"], body["rootHash"], body["timestamp"], body["keyID"], body["signature"]
    )


async def test_a_capture_shows_up_in_the_trace(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    job = await capture(client, pharma_example, operator)
    assert job["success"], job
    response = await client.get(f"/trace/{SERIAL}", headers=operator)
    assert response.status == 200, await response.text()
    trace = await response.json()
    assert trace["identifier"] == SERIAL
    steps = [event["biz_step"] for event in trace["events"]]
    assert steps[0] == "commissioning"
    assert "packing" in steps
    assert steps[-1] == "shipping"
    # The case was shipped, so the item travelled with it: custody passed to the buyer.
    shipped = next(e for e in trace["events"] if e["biz_step"] == "shipping")
    assert shipped["inferred"]
    assert len(trace["ownership_changes"]) == 1
    change = trace["ownership_changes"][0]
    assert change["seller"]["id"] != change["buyer"]["id"]
    assert change["lot"]
    assert trace["status"]


async def test_every_inserted_event_and_the_document_get_a_leaf(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    job = await capture(client, pharma_example, operator)
    signed = await _checkpoint(client, operator)
    hashes = _hashes(PHARMA_EXAMPLE)
    assert signed["treeSize"] == len(set(hashes)) + 1
    keys = (await (await client.get("/ledger/checkpoints", headers=operator)).json())["publicKeys"]
    assert verify_checkpoint(_signed(signed), load_public_key(keys[signed["keyID"]].encode()))
    store = client.app[STORE]
    for hash_id in hashes[:3]:
        response = await client.get(f"/ledger/inclusion?record={hash_id}", headers=operator)
        assert response.status == 200, await response.text()
        proof = await response.json()
        record = await store.get_event(hash_id, Visibility.everything())
        assert record is not None
        assert proof["digest"] == event_digest(record.body)
        assert proof["checkpoint"]["rootHash"] == signed["rootHash"]
        leaf = leaf_hash(leaf_data("event", hash_id, proof["digest"]))
        path = [bytes.fromhex(node) for node in proof["path"]]
        root = bytes.fromhex(signed["rootHash"])
        assert verify_inclusion(leaf, proof["leafIndex"], proof["treeSize"], path, root)
        assert not verify_inclusion(leaf, proof["leafIndex"] ^ 1, proof["treeSize"], path, root)
    stored_job = await store.get_capture_job(job["captureID"])
    assert stored_job is not None
    assert stored_job.document_id is not None
    response = await client.get(
        f"/ledger/inclusion?kind=document&record={stored_job.document_id}", headers=operator
    )
    assert response.status == 200
    document = await store.get_document(stored_job.document_id)
    assert document is not None
    assert (await response.json())["digest"] == document.sha256


async def test_duplicates_add_no_event_leaves_and_consistency_holds(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    await capture(client, pharma_example, operator)
    first = await _checkpoint(client, operator)
    again = await capture(client, pharma_example, operator)
    assert again["duplicates"] == again["captured"] + again["duplicates"] > 0
    second = await _checkpoint(client, operator)
    # The repeated document is a new record of its own; its events are not.
    assert second["treeSize"] == first["treeSize"] + 1
    await capture(client, SHIPMENT.read_bytes(), operator)
    third = await _checkpoint(client, operator)
    assert third["treeSize"] > second["treeSize"] + 1
    response = await client.get(
        f"/ledger/consistency?from={first['treeSize']}&to={third['treeSize']}", headers=operator
    )
    assert response.status == 200, await response.text()
    proof = await response.json()
    assert proof["fromRoot"] == first["rootHash"]
    assert proof["toRoot"] == third["rootHash"]
    path = [bytes.fromhex(node) for node in proof["path"]]
    old, new = bytes.fromhex(first["rootHash"]), bytes.fromhex(third["rootHash"])
    assert verify_consistency(first["treeSize"], third["treeSize"], old, new, path)
    assert not verify_consistency(first["treeSize"], third["treeSize"], new, old, path)


async def test_proceed_captures_run_the_hooks_per_batch(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    job = await capture(
        client, pharma_example, operator, **{"GS1-Capture-Error-Behaviour": "proceed"}
    )
    assert job["success"], job
    assert (await client.get(f"/trace/{SERIAL}", headers=operator)).status == 200
    signed = await _checkpoint(client, operator)
    assert signed["treeSize"] == job["captured"] + 1


def _without_statement(document: bytes) -> bytes:
    return re.sub(
        rb"<gs1ushc:dscsaTransactionStatement>.*?</gs1ushc:dscsaTransactionStatement>",
        b"",
        document,
        flags=re.DOTALL,
    )


async def test_lenient_mode_stores_and_records_a_missing_statement(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    job = await capture(client, _without_statement(pharma_example), operator)
    assert job["success"], job
    response = await client.get("/exceptions?type=missing_transaction_statement", headers=operator)
    assert response.status == 200, await response.text()
    exceptions = (await response.json())["exceptions"]
    assert len(exceptions) == 1
    shipping = _hashes(PHARMA_EXAMPLE)[-1]  # the shipment's last event ships the pallet
    assert exceptions[0]["event_hashes"] == [shipping]
    assert exceptions[0]["identifiers"]


async def test_strict_mode_refuses_a_document_without_transaction_statement(
    aiohttp_client: AiohttpClient, settings: Settings, pharma_example: bytes
) -> None:
    strict = await aiohttp_client(
        create_app(settings.model_copy(update={"dscsa_checks": "strict"}))
    )
    operator = bearer(settings.operator_token_path.read_text().strip())
    response = await strict.post(
        "/capture",
        data=_without_statement(pharma_example),
        headers={**operator, "Content-Type": "application/xml"},
    )
    assert response.status == 422, await response.text()
    problem = await response.json()
    assert "transaction statement" in str(problem).lower()
    assert await strict.app[STORE].count_events() == 0
    job = await capture(strict, pharma_example, operator)
    assert job["success"], job


async def test_checkpoint_signature_is_base64_ed25519(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    await capture(client, pharma_example, operator)
    signed = await _checkpoint(client, operator)
    assert len(base64.b64decode(signed["signature"])) == 64


class _Recorder:
    """A hook that keeps what it is given, to check how the runner calls hooks."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, bool, list[Any]]] = []

    def summarize(self, hash_id: str, event: Any, record: Any) -> str:
        return hash_id

    async def committed(self, batch: CommittedBatch, items: Any) -> None:
        self.calls.append((batch.first, batch.final, list(items)))


def _record(hash_id: str) -> Any:
    class _Stored:
        pass

    stored = _Stored()
    stored.hash_id = hash_id  # type: ignore[attr-defined]
    return stored


async def test_held_items_come_back_in_chunks_after_the_commit(tmp_path: Path) -> None:
    recorder = _Recorder()
    runner = HookRunner([recorder], tmp_path / "spool")
    total = CHUNK * 2 + 17
    for start in range(0, total, 700):
        ids = [f"h{n}" for n in range(start, min(start + 700, total))]
        records = [_record(h) for h in ids] + [_record(ids[0])]  # a repeat in the batch
        summaries = [(h,) for h in ids] + [(ids[0],)]
        inserted = ids[1:] if start == 0 else ids  # h0 was already stored
        runner.hold(runner.inserted(records, summaries, inserted))
    assert list((tmp_path / "spool").iterdir()) == []  # unlinked temporary file
    head: Any = object()
    document: Any = type("D", (), {"document_id": "d"})()
    await runner.after_commit(head, document)
    sizes = [len(items) for _, _, items in recorder.calls]
    assert sizes == [CHUNK, CHUNK, total - 1 - 2 * CHUNK]
    assert [(first, final) for first, final, _ in recorder.calls] == [
        (True, False),
        (False, False),
        (False, True),
    ]
    seen = [item for _, _, items in recorder.calls for item in items]
    assert seen == [f"h{n}" for n in range(1, total)]


async def test_a_capture_with_nothing_new_still_reports_the_document() -> None:
    recorder = _Recorder()
    runner = HookRunner([recorder])
    document: Any = type("D", (), {"document_id": "d"})()
    await runner.after_commit(object(), document)  # type: ignore[arg-type]
    assert recorder.calls == [(True, True, [])]


async def test_the_last_full_chunk_is_final_when_nothing_is_left_over(tmp_path: Path) -> None:
    recorder = _Recorder()
    runner = HookRunner([recorder], tmp_path / "spool")
    ids = [f"h{n}" for n in range(CHUNK * 2)]
    runner.hold([(h,) for h in ids])
    document: Any = type("D", (), {"document_id": "d"})()
    await runner.after_commit(object(), document)  # type: ignore[arg-type]
    assert [(first, final, len(items)) for first, final, items in recorder.calls] == [
        (True, False, CHUNK),
        (False, True, CHUNK),
    ]
