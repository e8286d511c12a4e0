"""Export bundles built from the project's DSCSA shipment, and their offline verification."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from service.cli import main as cli_main
from service.export_bundle import BundleSources, build_bundle
from service.export_verification import BUNDLE_FILES, verify_bundle
from service.exports import ExportRequest, ExportScope, ScopeKind, new_request
from service.keys import KeyRing
from tests.service.export_fixtures import PHARMA_EXAMPLE, index_captured, open_export_stores

ITEM_GTIN = "00300010123455"
ITEM = "urn:epc:id:sgtin:030001.0012345.1001"
MANUFACTURER = "0300011111116"
WHOLESALER = "0399999999991"


@dataclass(frozen=True)
class Built:
    path: Path
    keys: Path
    summary: dict[str, object]


def _request(scope: ExportScope) -> ExportRequest:
    return new_request(
        scope=scope,
        requester_kind="fda",
        requester="FDA Office of Drug Security",
        reason="Recalled product investigation",
        incident_number="3911-2026-0042",
        created_by="operator-1",
    )


async def _build(folder: Path, scope: ExportScope, xml_signing_limit: int = 1 << 23) -> Built:
    stores = await open_export_stores(folder)
    try:
        await index_captured(stores.events, stores.trace, stores.ledger, PHARMA_EXAMPLE)
        sources = BundleSources(stores.events, stores.trace, stores.ledger, stores.keyring)
        result = await build_bundle(
            _request(scope), sources, folder / "bundle.zip", xml_signing_limit=xml_signing_limit
        )
    finally:
        await stores.close()
    return Built(result.path, folder / "keys", result.summary)


LOT = ExportScope(ScopeKind.LOT, gtin=ITEM_GTIN, lot="LOT2026A")
# The expected figures below are those of fixtures/scenarios/dscsa/1-manufacturer-to-wholesaler.xml:
# 8 packs of lot LOT2026A in 2 cases on one pallet, sold on PO-2026-0042 / DEL-2026-0101.


@pytest.fixture(scope="module")
def lot_bundle(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return asyncio.run(_build(tmp_path_factory.mktemp("lot"), LOT))


def _member(bundle: Built, name: str) -> bytes:
    with zipfile.ZipFile(bundle.path) as z:
        return z.read(name)


def test_bundle_holds_exactly_the_documented_files(lot_bundle: Built) -> None:
    with zipfile.ZipFile(lot_bundle.path) as z:
        assert sorted(z.namelist()) == sorted(BUNDLE_FILES)
    assert lot_bundle.summary["identifiers"] == 8
    assert lot_bundle.summary["xml_signed"] is True


def test_epcis_xml_has_gs1us_header_master_data_and_signature(lot_bundle: Built) -> None:
    root = etree.fromstring(_member(lot_bundle, "epcis.xml"))
    assert root.get("schemaVersion") == "1.2"
    header = root.find("EPCISHeader")
    assert header is not None
    names = {e.get("id") for e in header.iter("VocabularyElement")}
    assert "urn:epc:idpat:sgtin:030001.0012345.*" in names
    assert "urn:epc:id:sgln:039999.999999.0" in names
    hc = "{http://epcis.gs1us.org/hc/ns}"
    affirm = header.find(f"{hc}dscsaTransactionStatement/{hc}affirmTransactionStatement")
    assert affirm is not None
    assert affirm.text == "true"
    signature = header.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert signature is not None
    assert signature.get("Id") is None  # the placeholder became the real signature
    events = root.find("EPCISBody/EventList")
    assert events is not None
    assert len(events) == lot_bundle.summary["events"]


def test_events_jsonld_is_epcis_2_with_every_event(lot_bundle: Built) -> None:
    document = json.loads(_member(lot_bundle, "events.jsonld"))
    assert document["schemaVersion"] == "2.0"
    assert len(document["epcisBody"]["eventList"]) == lot_bundle.summary["events"]


def test_transactions_csv_has_dscsa_transaction_information(lot_bundle: Built) -> None:
    rows = list(csv.DictReader(io.StringIO(_member(lot_bundle, "transactions.csv").decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["product_name"] == "Epcistra"
    assert row["strength"] == "100mg"
    assert row["dosage_form"] == "TABLET"
    assert row["ndc"] == "0001-0123-45"
    assert row["number_of_containers"] == "8"
    assert row["lot"] == "LOT2026A"
    assert row["seller_name"] == "GS1 Pharma"
    assert row["buyer_name"] == "GS1 Drug Distributor"
    assert "PO-2026-0042" in row["purchase_orders"]
    assert "DEL-2026-0101" in row["despatch_advices"]
    assert ITEM in row["serials"].split()


def test_report_has_summary_svg_timeline_and_sections(lot_bundle: Built) -> None:
    html = _member(lot_bundle, "report.html").decode()
    assert "3911-2026-0042" in html
    assert "<svg" in html
    assert "shipping" in html
    assert "Exceptions" in html
    assert "There is no verification history" in html
    assert "<script" not in html


def test_manifest_lists_hashes_checkpoint_and_proofs(lot_bundle: Built) -> None:
    manifest = json.loads(_member(lot_bundle, "manifest.json"))
    assert set(manifest["files"]) == set(BUNDLE_FILES) - {"manifest.json", "manifest.sig"}
    assert manifest["request"]["incident_number"] == "3911-2026-0042"
    kinds = [record[0] for record in manifest["ledger"]["records"]]
    assert kinds.count("event") == lot_bundle.summary["events"]
    assert kinds.count("document") == 1
    assert manifest["ledger"]["missing"] == []
    assert manifest["xml_signature"]["present"] is True


def test_untouched_bundle_verifies(lot_bundle: Built) -> None:
    report = verify_bundle(lot_bundle.path)
    assert report.ok, report.failures()
    assert "bundled key" in report.key_source
    assert {c.name for c in report.checks} >= {
        "manifest signature",
        "inclusion proofs",
        "ledger checkpoint",
        "events",
        "XML signature",
    }


def _rewrite(source: Path, target: Path, name: str, offset: int) -> None:
    """Copy the bundle with one byte of one member flipped (a well-formed zip)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = bytearray(old.read(info.filename))
            if info.filename == name:
                position = offset % len(data)
                data[position] ^= 0x01
            new.writestr(info, bytes(data))


@pytest.mark.parametrize("name", BUNDLE_FILES)
@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_any_flipped_byte_of_any_file_fails(
    lot_bundle: Built, tmp_path: Path, name: str, where: float
) -> None:
    size = len(_member(lot_bundle, name))
    tampered = tmp_path / "tampered.zip"
    _rewrite(lot_bundle.path, tampered, name, int(size * where))
    report = verify_bundle(tampered)
    assert not report.ok
    assert report.failures()


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_flipped_byte_of_the_zip_itself_fails(
    lot_bundle: Built, tmp_path: Path, where: float
) -> None:
    data = bytearray(lot_bundle.path.read_bytes())
    data[int(len(data) * where)] ^= 0x40
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(bytes(data))
    assert not verify_bundle(tampered).ok


def test_a_pinned_key_is_used_and_named(lot_bundle: Built, tmp_path: Path) -> None:
    keyring = KeyRing(lot_bundle.keys, b"test passphrase")
    report = verify_bundle(lot_bundle.path, keyring.public_pem())
    assert report.ok
    assert "pinned" in report.key_source
    stranger = KeyRing(tmp_path / "other", b"another passphrase")
    stranger.generate()
    refused = verify_bundle(lot_bundle.path, stranger.public_pem())
    assert not refused.ok
    assert "pinned" in refused.key_source


def test_a_bundle_resigned_with_another_key_fails_against_the_pinned_key(
    lot_bundle: Built, tmp_path: Path
) -> None:
    # An attacker edits a file, recomputes the manifest and signs with their own key.
    from service.export_bundle import manifest_signed_bytes

    forger = KeyRing(tmp_path / "forger", b"forger passphrase")
    forger.generate()
    with zipfile.ZipFile(lot_bundle.path) as old:
        members = {name: old.read(name) for name in old.namelist()}
    manifest = json.loads(members["manifest.json"])
    members["report.html"] = members["report.html"].replace(b"FDA", b"XYZ")
    import hashlib

    manifest["files"]["report.html"]["sha256"] = hashlib.sha256(members["report.html"]).hexdigest()
    members["public-key.pem"] = forger.public_pem()
    manifest["files"]["public-key.pem"]["sha256"] = hashlib.sha256(
        members["public-key.pem"]
    ).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    key_id, signature = forger.sign(manifest_signed_bytes(members["manifest.json"]))
    import base64

    members["manifest.sig"] = json.dumps(
        {"key_id": key_id, "signature": base64.b64encode(signature).decode()}
    ).encode()
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as new:
        for name, data in members.items():
            new.writestr(name, data)
    pinned = KeyRing(lot_bundle.keys, b"test passphrase").public_pem()
    assert not verify_bundle(forged, pinned).ok
    # Trusting the bundled key, the forgery still fails: the checkpoint key is not the signer.
    assert not verify_bundle(forged).ok


def test_verify_export_command_exit_status(
    lot_bundle: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["verify-export", str(lot_bundle.path)]) == 0
    assert "bundled key" in capsys.readouterr().out
    pem = tmp_path / "key.pem"
    pem.write_bytes(KeyRing(lot_bundle.keys, b"test passphrase").public_pem())
    assert cli_main(["verify-export", str(lot_bundle.path), "--public-key", str(pem)]) == 0
    assert "pinned key" in capsys.readouterr().out
    tampered = tmp_path / "tampered.zip"
    _rewrite(lot_bundle.path, tampered, "transactions.csv", 10)
    assert cli_main(["verify-export", str(tampered)]) == 1
    assert "FAIL file transactions.csv" in capsys.readouterr().out


async def test_large_documents_fall_back_to_the_manifest_signature(tmp_path: Path) -> None:
    built = await _build(tmp_path, LOT, xml_signing_limit=1000)
    manifest = json.loads(_member(built, "manifest.json"))
    assert manifest["xml_signature"]["present"] is False
    assert "limit" in manifest["xml_signature"]["reason"]
    report = verify_bundle(built.path)
    assert report.ok, report.failures()
    assert any("not XML-signed" in c.detail for c in report.checks)


async def test_serial_scope_follows_the_containers(tmp_path: Path) -> None:
    built = await _build(tmp_path, ExportScope(ScopeKind.SERIALS, serials=(ITEM,)))
    document = json.loads(_member(built, "events.jsonld"))
    types = [(e["type"], e.get("bizStep")) for e in document["epcisBody"]["eventList"]]
    # Commissioned, packed (case, pallet), shipped: the item's whole chain.
    assert ("ObjectEvent", "commissioning") in types
    assert ("ObjectEvent", "shipping") in types
    assert ("AggregationEvent", "packing") in types
    assert built.summary["identifiers"] == 1
    assert verify_bundle(built.path).ok


async def test_partner_and_gtin_scopes_use_the_date_range(tmp_path: Path) -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    partner = await _build(
        tmp_path / "p",
        ExportScope(ScopeKind.PARTNER, partner_gln=WHOLESALER, date_from=start, date_to=end),
    )
    assert partner.summary["transactions"] == 1
    assert verify_bundle(partner.path).ok
    gtin = await _build(
        tmp_path / "g", ExportScope(ScopeKind.GTIN, gtin=ITEM_GTIN, date_from=start, date_to=end)
    )
    assert gtin.summary["identifiers"] == 8
    empty = await _build(
        tmp_path / "e",
        ExportScope(
            ScopeKind.GTIN,
            gtin=ITEM_GTIN,
            date_from=datetime(2020, 1, 1, tzinfo=UTC),
            date_to=datetime(2021, 1, 1, tzinfo=UTC),
        ),
    )
    assert empty.summary["events"] == 0
    assert verify_bundle(empty.path).ok
