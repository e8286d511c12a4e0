"""The export's fast paths give the bytes of the former ones: epcis.xml written in a child
process or a thread equals the XML of each stored body read back into a model and written in
order (what build_bundle did before), and the whole bundle is the same either way."""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import zipfile
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import service.export_xml as export_xml
from epcis.jsonld_reader import event_from_jsonld
from epcis.model import DocumentHead
from epcis.xml_writer import write_xml
from service import export_bundle, export_report
from service.containment import TimelineEntry
from service.export_bundle import BundleSources, build_bundle
from service.export_scope import resolve_scope
from service.export_verification import BUNDLE_FILES, verify_bundle
from service.exports import ExportScope, ScopeKind, new_request
from service.master_data import PartyRecord
from tests.service.export_fixtures import PHARMA_EXAMPLE, index_captured, open_export_stores

ITEM_GTIN = "00300010123455"
_START, _END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
SCOPES = {
    "lot": ExportScope(ScopeKind.LOT, gtin=ITEM_GTIN, lot="LOT2026A"),
    "serial": ExportScope(ScopeKind.SERIALS, serials=("urn:epc:id:sgtin:030001.0012345.1001",)),
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
            stores.events, [*contents.facts, *contents.scope_events]
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


def _former_timeline_svg(entries: list[TimelineEntry], parties: dict[str, PartyRecord]) -> str:
    """export_report.timeline_svg as it was before its fragments were cached."""
    step = 170
    width = max(1, len(entries)) * step + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="150" '
        f'viewBox="0 0 {width} 150" role="img" aria-label="chain of custody">',
        f'<line x1="20" y1="50" x2="{width - 20}" y2="50" stroke="#999" stroke-width="2"/>',
    ]
    for position, entry in enumerate(entries):
        facts = entry.facts
        x = 20 + step // 2 + position * step
        colour = export_report._STEP_COLOURS.get(facts.biz_step or "", "#555")
        dash = ' stroke-dasharray="3,2" fill="white"' if entry.inferred else f' fill="{colour}"'
        where = export_report._party_name(facts.biz_location or facts.read_point, parties)
        to = export_report._party_name(facts.destination("owning_party"), parties)
        label = facts.biz_step or facts.event_type
        title = f"{label} {facts.event_time.isoformat()} {facts.hash_id}"
        if entry.inferred:
            title += f" (via {' > '.join(entry.via)})"
        parts.append(
            f"<g><title>{escape(title)}</title>"
            f'<circle cx="{x}" cy="50" r="9" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{x}" y="30" text-anchor="middle" font-size="12" fill="{colour}">'
            f"{escape(label)}</text>"
            f'<text x="{x}" y="78" text-anchor="middle" font-size="11">'
            f"{escape(facts.event_time.strftime('%Y-%m-%d %H:%M'))}</text>"
            f'<text x="{x}" y="96" text-anchor="middle" font-size="10">{escape(where[:28])}</text>'
            + (
                f'<text x="{x}" y="114" text-anchor="middle" font-size="10">'
                f"to {escape(to[:25])}</text>"
                if to
                else ""
            )
            + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


async def test_cached_timelines_equal_the_former_rendering(tmp_path: Path) -> None:
    stores = await open_export_stores(tmp_path)
    try:
        await index_captured(stores.events, stores.trace, stores.ledger, PHARMA_EXAMPLE)
        contents = await resolve_scope(SCOPES["lot"], stores.events, stores.trace)
        parties = await stores.trace.get_parties(
            {p for f in contents.facts.values() for _, p in (*f.sources, *f.destinations)}
        )
    finally:
        await stores.close()
    timelines = [contents.timelines[t] for t in contents.targets]
    assert any(e.inferred for entries in timelines for e in entries)
    odd = dataclasses.replace(
        timelines[0][0].facts,
        hash_id="ni:///sha-256;odd",
        biz_step=None,
        event_type='Object<&>"Event',
        destinations=(),
    )
    timelines.append([TimelineEntry(odd, ("urn:x:<case>",)), TimelineEntry(odd)])
    cache: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for entries in timelines:
        former = _former_timeline_svg(entries, parties)
        assert export_report.timeline_svg(entries, parties) == former
        assert export_report.timeline_svg(entries, parties, cache) == former
    assert len(cache) < sum(len(entries) for entries in timelines)


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=6)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(_JSON)
def test_manifest_json_is_json_dumps_with_indent_one(value: object) -> None:
    assert export_bundle.manifest_json(value) == json.dumps(value, indent=1, sort_keys=True)


def test_manifest_json_hands_other_values_to_json_dumps() -> None:
    class Level(enum.IntEnum):
        ONE = 1

    assert export_bundle.manifest_json({"a": [Level.ONE]}) == '{\n "a": [\n  1\n ]\n}'
    with pytest.raises(TypeError, match="not JSON serializable"):
        export_bundle.manifest_json({"a": [datetime(2026, 1, 1, tzinfo=UTC)]})
    with pytest.raises(TypeError):
        export_bundle.manifest_json({1: "a", "b": 2})
