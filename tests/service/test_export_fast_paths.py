"""The export's fast paths give the bytes of the former ones: epcis.xml written in a child
process or a thread equals the XML of each stored body read back into a model and written in
order (what build_bundle did before), and the whole bundle is the same either way."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

import service.export_xml as export_xml
from epcis.jsonld_reader import event_from_jsonld
from epcis.model import DocumentHead
from epcis.xml_writer import write_xml
from service import export_bundle
from service.export_bundle import BundleSources, build_bundle
from service.export_scope import resolve_scope
from service.export_verification import BUNDLE_FILES, verify_bundle
from service.exports import ExportScope, ScopeKind, new_request
from tests.service.export_fixtures import PHARMA_EXAMPLE, index_captured, open_export_stores

ITEM_GTIN = "00300010123455"
_START, _END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 12, 31, tzinfo=UTC)
SCOPES = {
    "lot": ExportScope(ScopeKind.LOT, gtin=ITEM_GTIN, lot="A123"),
    "serial": ExportScope(ScopeKind.SERIALS, serials=("urn:epc:id:sgtin:030001.0012345.11",)),
    "partner": ExportScope(
        ScopeKind.PARTNER, partner_gln="0399999999991", date_from=_START, date_to=_END
    ),
    "gtin": ExportScope(ScopeKind.GTIN, gtin=ITEM_GTIN, date_from=_START, date_to=_END),
    "empty": ExportScope(
        ScopeKind.GTIN,
        gtin=ITEM_GTIN,
        date_from=datetime(2020, 1, 1, tzinfo=UTC),
        date_to=datetime(2021, 1, 1, tzinfo=UTC),
    ),
}
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


@pytest.mark.skipif(not PHARMA_EXAMPLE.exists(), reason="the shared reference data is absent")
@pytest.mark.parametrize("name", list(SCOPES))
async def test_child_process_thread_and_former_path_give_the_same_bundle(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scope = SCOPES[name]
    stores = await open_export_stores(tmp_path)
    try:
        await index_captured(stores.events, stores.trace, stores.ledger, PHARMA_EXAMPLE)
        sources = BundleSources(stores.events, stores.trace, stores.ledger, stores.keyring)
        request = new_request(
            scope=scope, requester_kind="fda", requester="FDA", reason="test", created_by="t"
        )
        built = {}
        for label, threshold in (("thread", 1 << 30), ("child", 0)):
            monkeypatch.setattr(export_xml, "CHILD_PROCESS_MIN_EVENTS", threshold)
            # XML signing off: its key is random, everything else is deterministic.
            result = await build_bundle(
                request, sources, tmp_path / f"{label}.zip", xml_signing_limit=0, now=NOW
            )
            built[label] = _members(result.path)
            assert verify_bundle(result.path).ok
        assert built["thread"] == built["child"]
        assert sorted(built["child"]) == sorted(BUNDLE_FILES)

        # The former path: every stored body back to a model, written in (time, hash) order.
        contents = await resolve_scope(scope, stores.events, stores.trace)
        records = await export_bundle._fetch_events(
            stores.events, contents, [*contents.facts, *contents.scope_events]
        )
        ordered = sorted(records.values(), key=lambda r: (r.event_time, r.hash_id))
        products, parties = await export_bundle._master_data(stores.trace, contents, ordered)
        head = export_bundle._head(request, None, NOW, products, parties)
        signing = head.model_copy(
            update={"header": export_bundle._with_placeholder(head.header)}, deep=False
        )
        expected = io.BytesIO()
        models = (event_from_jsonld(json.loads(r.body), {}) for r in ordered)
        write_xml(signing, models, expected, version="1.2")
        assert built["child"]["epcis.xml"] == expected.getvalue()
        events = json.loads(built["child"]["events.jsonld"])["epcisBody"]["eventList"]
        assert len(events) == len(ordered)
    finally:
        await stores.close()


def _head() -> DocumentHead:
    request = new_request(
        scope=SCOPES["lot"], requester_kind="fda", requester="F", reason="r", created_by="t"
    )
    return export_bundle._head(request, None, NOW, {}, {})


def test_spool_round_trips_and_rejects_a_truncated_file(tmp_path: Path) -> None:
    bodies = [b"{}", b'{"a":"\xc3\xa9"}', b"", b"x" * 70_000]
    spool = tmp_path / "spool"
    export_xml._write_inputs(spool, tmp_path / "head", _head(), bodies)
    assert list(export_xml._read_spool(spool)) == bodies
    spool.write_bytes(spool.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        list(export_xml._read_spool(spool))


async def test_a_failing_child_is_reported_and_leaves_no_spool(tmp_path: Path) -> None:
    head = _head()
    target = tmp_path / "epcis.xml"
    with pytest.raises(RuntimeError, match="unknown event type"):
        await export_xml.write_epcis_xml_async(
            target, head, [b'{"type": "NoSuchEvent"}'], min_events=0
        )
    assert not (tmp_path / "epcis.xml.bodies").exists()
    assert not (tmp_path / "epcis.xml.head").exists()


@pytest.mark.skipif(not PHARMA_EXAMPLE.exists(), reason="the shared reference data is absent")
async def test_proofs_in_one_pass_equal_proofs_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = await open_export_stores(tmp_path)
    try:
        await index_captured(stores.events, stores.trace, stores.ledger, PHARMA_EXAMPLE)
        wanted: list[tuple[str, str]] = []
        async for entry in stores.ledger.store.iter_entries():
            if entry.index != 1:  # all but one, plus records the ledger does not hold
                wanted.append((entry.kind, entry.record_id))
        wanted += [("event", "ni:///sha-256;absent"), ("document", "absent")]
        assert len(wanted) > 6
        monkeypatch.setattr(export_bundle, "_LEAF_BATCH", 3)  # several batches, a ragged end
        sections = []
        for one_by_one in (1 << 30, 0):
            monkeypatch.setattr(export_bundle, "_PROOFS_ONE_BY_ONE", one_by_one)
            sections.append(
                await export_bundle._ledger_section(stores.ledger, stores.keyring, wanted)
            )
        assert sections[0] == sections[1]
        assert len(sections[0]["missing"]) == 2
        assert len(sections[0]["records"]) == len(wanted) - 2
    finally:
        await stores.close()
