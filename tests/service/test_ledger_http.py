"""``/ledger`` on the wired app: who may see which proof, and requests it refuses."""

from __future__ import annotations

from epcis.event_hash import event_hash, ignored_fields
from epcis.model import DocumentHead
from epcis.reading import iter_document
from tests.service.conftest import PHARMA_EXAMPLE, Client, capture


def _first_hash() -> str:
    with PHARMA_EXAMPLE.open("rb") as handle:
        items = iter_document(handle)
        head = next(items)
        assert isinstance(head, DocumentHead)
        return event_hash(next(items), ignore=ignored_fields(head))  # type: ignore[arg-type]


async def test_partners_see_proofs_only_of_events_they_may_see(
    client: Client,
    operator: dict[str, str],
    manufacturer: dict[str, str],
    stranger: dict[str, str],
    pharma_example: bytes,
) -> None:
    job = await capture(client, pharma_example, manufacturer)
    assert job["success"], job
    record = _first_hash()
    own = await client.get(f"/ledger/inclusion?record={record}", headers=manufacturer)
    assert own.status == 200, await own.text()
    # No checkpoint yet: the proof is against the current tree, with no signed head.
    assert (await own.json())["checkpoint"] is None
    foreign = await client.get(f"/ledger/inclusion?record={record}", headers=stranger)
    assert foreign.status == 404
    documents = await client.get(
        f"/ledger/inclusion?kind=document&record={record}", headers=stranger
    )
    assert documents.status == 404
    assert (await client.post("/ledger/checkpoints", headers=manufacturer)).status == 403
    assert (await client.post("/ledger/checkpoints", headers=operator)).status == 201
    signed = await client.get(f"/ledger/inclusion?record={record}", headers=manufacturer)
    assert (await signed.json())["checkpoint"]["treeSize"] == job["captured"] + 1


async def test_bad_proof_requests_are_refused(client: Client, operator: dict[str, str]) -> None:
    assert (await client.get("/ledger/inclusion", headers=operator)).status == 400
    assert (await client.get("/ledger/inclusion?record=x&kind=y", headers=operator)).status == 400
    assert (await client.get("/ledger/inclusion?record=nothing", headers=operator)).status == 404
    assert (await client.get("/ledger/consistency?from=0", headers=operator)).status == 400
    assert (await client.get("/ledger/consistency?from=0&to=5", headers=operator)).status == 404
    assert (await client.get("/ledger/checkpoints")).status == 401
    listing = await client.get("/ledger/checkpoints", headers=operator)
    body = await listing.json()
    assert body["treeSize"] == 0
    assert body["checkpoints"] == []
    assert len(body["publicKeys"]) == 1
