"""Build the signed export bundle (a zip) that answers a regulator's or partner's request.

Files: ``epcis.xml`` (EPCIS 1.2, GS1 US header, XML-signed when small enough), ``events.jsonld``
(EPCIS 2.0: each event exactly as stored, so each hashes to its ledger leaf's digest),
``transactions.csv`` (DSCSA transaction information), ``report.html``, ``public-key.pem``,
``manifest.json`` (request, file hashes, signed ledger checkpoint, inclusion proofs) and
``manifest.sig`` (Ed25519 over the manifest). ``service.export_verification`` checks it all.

XML signature: an enveloped XMLDSig in the EPCISHeader's ``##other`` slot, made with a fresh
ECDSA P-256 key and self-signed certificate per bundle (XMLDSig has no Ed25519 algorithm that
signxml implements); the certificate is listed in the Ed25519-signed manifest, which is what
makes it trustworthy. signxml holds the whole document as a DOM (about 40-60x the file size in
memory), so documents above ``xml_signing_limit`` bytes are not XML-signed; the manifest says
so, and their integrity rests on the manifest signature and file hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii as _json_string
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

from epcis.jsonld_writer import head_to_jsonld
from epcis.model import (
    DocumentFormat,
    DocumentHead,
    DocumentIdentification,
    DSCSATransactionStatement,
    EPCISHeader,
    GS1USHealthcareHeader,
    Partner,
    StandardBusinessDocumentHeader,
    Vocabulary,
    VocabularyAttribute,
    VocabularyElement,
    XmlElement,
)
from service.audit_records import resolution_leaf, verification_leaf
from service.checkpoints import Checkpoint
from service.containment import EventFacts
from service.export_report import ReportData, write_report
from service.export_scope import ScopeContents, resolve_scope
from service.export_verification import signature_file_bytes
from service.export_xml import write_epcis_xml_async
from service.exports import ExportRequest, request_to_dict, scope_to_dict
from service.keys import KeyRing
from service.ledger import Ledger, LedgerEntry, LedgerError
from service.ledger_records import event_digest
from service.master_data import PartyRecord, ProductRecord
from service.merkle import MerkleTree
from service.settings import package_version
from service.store import EventRecord, EventStore
from service.traceability_store import ExceptionFilter, TraceabilityStore
from service.verification_log import LogFilter, VerificationLog

__all__ = [
    "BUNDLE_FORMAT",
    "CSV_COLUMNS",
    "MANIFEST_SIGNATURE_HEADER",
    "XML_SIGNING_LIMIT",
    "BundleResult",
    "BundleSources",
    "build_bundle",
    "manifest_json",
    "manifest_signed_bytes",
]

BUNDLE_FORMAT = "dscsa-export-bundle/v1"
# Signed bytes start with this, so a manifest signature can never pass for a checkpoint's.
MANIFEST_SIGNATURE_HEADER = b"dscsa-export-manifest/v1\n"
# Measured (bench/exports.py): signxml peaks at about 520 MB RSS on an 8 MB EPCIS document
# and 176 MB on 2 MB, so 4 MB keeps signing well inside the 500 MB export budget.
XML_SIGNING_LIMIT = 4 * 1024 * 1024
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
LEGAL_NOTICE = "Seller has complied with each applicable subsection of FDCA Sec. 581(27)(A)-(G)."
_MDA = "urn:epcglobal:cbv:mda#"
_NAMESPACES = {
    "cbvmda": "urn:epcglobal:cbv:mda",
    "sbdh": "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader",
    "gs1ushc": "http://epcis.gs1us.org/hc/ns",
}
# Up to this many records, proofs come one by one from the ledger; above, one pass over it.
_PROOFS_ONE_BY_ONE = 1000
_LEAF_BATCH = 10_000

CSV_COLUMNS = (
    "transaction_event",
    "transaction_date",
    "shipment_date",
    "product_name",
    "strength",
    "dosage_form",
    "ndc",
    "container_size",
    "number_of_containers",
    "gtin",
    "lot",
    "expiry",
    "seller_id",
    "seller_name",
    "seller_address",
    "buyer_id",
    "buyer_name",
    "buyer_address",
    "ship_from",
    "ship_to",
    "purchase_orders",
    "despatch_advices",
    "serials",
)


@dataclass(frozen=True, slots=True)
class BundleSources:
    """Where an export reads from; the verification log is optional."""

    events: EventStore
    trace: TraceabilityStore
    ledger: Ledger
    keyring: KeyRing
    verification_log: VerificationLog | None = None
    sender_gln: str | None = None


@dataclass(frozen=True, slots=True)
class BundleResult:
    path: Path
    sha256: str
    size: int
    summary: dict[str, Any] = field(default_factory=dict)


def manifest_signed_bytes(manifest: bytes) -> bytes:
    return MANIFEST_SIGNATURE_HEADER + manifest


async def build_bundle(
    request: ExportRequest,
    sources: BundleSources,
    target: Path,
    *,
    xml_signing_limit: int = XML_SIGNING_LIMIT,
    now: datetime | None = None,
) -> BundleResult:
    """Write the bundle for ``request`` to ``target`` (a .zip path)."""
    generated = (now or datetime.now(UTC)).astimezone(UTC)
    contents = await resolve_scope(request.scope, sources.events, sources.trace)
    records = await _fetch_events(sources.events, [*contents.facts, *contents.scope_events])
    missing_events = sorted(set(contents.facts) - records.keys())
    ordered = sorted(records.values(), key=lambda r: (r.event_time, r.hash_id))
    products, parties = await _master_data(sources.trace, contents, ordered)
    head = _head(request, sources.sender_gln, generated, products, parties)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        # epcis.xml, the longest step, is written (in another process when large) while the
        # ledger proofs and the other files are made here.
        xml_task = asyncio.create_task(_write_epcis_xml(work, head, ordered))
        try:
            report = await _report_data(request, sources, contents, generated, products, parties)
            documents = sorted({r.document_id for r in ordered if r.document_id})
            document_digests = await _document_digests(sources.events, documents)
            # The verification history and exception resolutions the report shows are kept
            # records too: their leaves are proven beside the events'.
            reported = _reported_records(report)
            wanted = (
                [("event", r.hash_id) for r in ordered]
                + [("document", d) for d in documents if d in document_digests]
                + list(reported)
            )
            ledger_section = await _ledger_section(sources.ledger, sources.keyring, wanted)
            _note_mismatches(ledger_section, ordered, document_digests, reported)
            key_id = sources.keyring.active().key_id
            public_pem = sources.keyring.public_pem(key_id)
            transactions = await asyncio.to_thread(
                _write_other_files,
                work,
                head,
                ordered,
                contents,
                products,
                parties,
                report,
                public_pem,
            )
            await xml_task
        finally:
            if not xml_task.done():
                xml_task.cancel()
                with contextlib.suppress(BaseException):
                    await xml_task
        xml_signature = await asyncio.to_thread(
            _sign_xml_file, work / "epcis.xml", request, generated, xml_signing_limit
        )
        files = {
            "files": await asyncio.to_thread(_file_entries, work),
            "xml_signature": xml_signature,
        }
        counts = {
            "identifiers": len(contents.targets),
            "events": len(ordered),
            "documents": len(documents),
            "transactions": transactions,
            "events_missing_from_store": len(missing_events),
        }
        manifest = _manifest(
            request, generated, files, counts, ledger_section, key_id, missing_events
        )
        manifest_bytes = manifest_json(manifest).encode()
        signer, signature = sources.keyring.sign(manifest_signed_bytes(manifest_bytes))
        (work / "manifest.json").write_bytes(manifest_bytes)
        (work / "manifest.sig").write_bytes(signature_file_bytes(signer, signature))
        sha256, size = await asyncio.to_thread(_zip, work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {**counts, "xml_signed": manifest["xml_signature"]["present"]}
    summary["ledger_missing"] = len(ledger_section["missing"])
    summary["ledger_mismatched"] = len(ledger_section["mismatched"])
    return BundleResult(target, sha256, size, summary)


# --- reading ----------------------------------------------------------------------------------


async def _fetch_events(events: EventStore, hash_ids: Sequence[str]) -> dict[str, EventRecord]:
    """The stored events by hash, read in bulk without their query index, which no part of a
    bundle uses (decoding it was a tenth of a large export's time, holding it a third of its
    peak memory)."""
    return await events.event_records(list(dict.fromkeys(hash_ids)))


async def _master_data(
    trace: TraceabilityStore, contents: ScopeContents, records: Sequence[EventRecord]
) -> tuple[dict[str, ProductRecord], dict[str, PartyRecord]]:
    gtins = {s.gtin for s in contents.states.values() if s.gtin}
    party_ids: set[str] = set()
    for facts in contents.facts.values():
        party_ids.update(value for _, value in (*facts.sources, *facts.destinations))
        party_ids.update(p for p in (facts.biz_location, facts.read_point) if p)
    return await trace.get_products(gtins), await trace.get_parties(party_ids)


async def _document_digests(events: EventStore, document_ids: Sequence[str]) -> dict[str, str]:
    digests: dict[str, str] = {}
    for document_id in document_ids:
        document = await events.get_document(document_id)
        if document is not None:
            digests[document_id] = document.sha256
    return digests


async def _report_data(
    request: ExportRequest,
    sources: BundleSources,
    contents: ScopeContents,
    generated: datetime,
    products: dict[str, ProductRecord],
    parties: dict[str, PartyRecord],
) -> ReportData:
    targets = set(contents.targets)
    in_scope = set(contents.facts)
    exceptions = [
        record
        for record in await sources.trace.list_exceptions(ExceptionFilter(limit=100_000))
        if targets.intersection(record.identifiers) or in_scope.intersection(record.event_hashes)
    ]
    verifications = None
    if sources.verification_log is not None:
        verifications = await _verifications(sources.verification_log, request, contents)
    return ReportData(
        request=request,
        generated_at=generated,
        contents=contents,
        products=products,
        parties=parties,
        exceptions=exceptions,
        verifications=verifications,
    )


async def _verifications(
    log: VerificationLog, request: ExportRequest, contents: ScopeContents
) -> list[Any]:
    scope = request.scope
    serials = {(s.gtin, _serial_of(s.epc)) for s in contents.states.values() if s.gtin}
    gtins = {gtin for gtin, _ in serials}
    if scope.gtin:
        gtins.add(scope.gtin)
    found: list[Any] = []
    for gtin in sorted(gtins):
        where = LogFilter(gtin=gtin, lot=scope.lot, limit=100_000)
        for entry in await log.query(where):
            if scope.lot or (entry.gtin, entry.serial) in serials:
                found.append(entry)
    return sorted(found, key=lambda e: e.time)


def _serial_of(epc: str) -> str:
    if epc.startswith("urn:epc:id:sgtin:"):
        return epc.rsplit(".", 1)[-1]
    return epc.rsplit("/21/", 1)[-1]


# --- ledger -----------------------------------------------------------------------------------


async def _checkpoint(ledger: Ledger, keyring: KeyRing) -> Checkpoint:
    """The latest checkpoint when it covers the whole ledger with the active key, else a new one."""
    checkpoints = await ledger.store.checkpoints()
    latest = checkpoints[-1] if checkpoints else None
    if latest and latest.size == ledger.size and latest.key_id == keyring.active().key_id:
        return latest
    return await ledger.checkpoint(keyring)


async def _ledger_section(
    ledger: Ledger, keyring: KeyRing, wanted: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    checkpoint = await _checkpoint(ledger, keyring)
    size = checkpoint.size
    if len(wanted) <= _PROOFS_ONE_BY_ONE:
        proofs = await _proofs_one_by_one(ledger, wanted, size)
    else:
        proofs = await _proofs_in_one_pass(ledger, wanted, checkpoint)
    nodes: dict[str, int] = {}
    records: list[list[Any]] = []
    missing: list[list[str]] = []
    for kind, record_id in wanted:
        proof = proofs.get((kind, record_id))
        if proof is None:
            missing.append([kind, record_id])
            continue
        entry, path = proof
        indexes = [nodes.setdefault(node, len(nodes)) for node in path]
        records.append([kind, record_id, entry.digest, entry.index, indexes])
    return {
        "checkpoint": checkpoint.to_json(),
        "checkpoint_public_key": keyring.public_pem(checkpoint.key_id).decode(),
        "leaf": "SHA-256(0x00 || kind '\\n' record_id '\\n' digest), RFC 9162 tree",
        "nodes": list(nodes),
        "records": records,
        "missing": missing,
        "mismatched": [],
    }


async def _proofs_one_by_one(
    ledger: Ledger, wanted: Sequence[tuple[str, str]], size: int
) -> dict[tuple[str, str], tuple[LedgerEntry, list[str]]]:
    proofs: dict[tuple[str, str], tuple[LedgerEntry, list[str]]] = {}
    for kind, record_id in wanted:
        try:
            proof = await ledger.inclusion(kind, record_id, size)
        except LedgerError:
            continue
        proofs[(kind, record_id)] = (proof.entry, list(proof.path))
    return proofs


async def _proofs_in_one_pass(
    ledger: Ledger, wanted: Sequence[tuple[str, str]], checkpoint: Checkpoint
) -> dict[tuple[str, str], tuple[LedgerEntry, list[str]]]:
    """Rebuild the tree up to the checkpoint once, noting the wanted leaves on the way."""
    looking = set(wanted)
    found: dict[tuple[str, str], LedgerEntry] = {}
    tree = MerkleTree()
    hashes: list[bytes] = []  # added to the tree in batches: one pass per level, not per leaf
    async for entry in ledger.store.iter_entries():
        if entry.index >= checkpoint.size:
            break
        hashes.append(entry.leaf_hash)
        if len(hashes) >= _LEAF_BATCH:
            tree.extend_leaf_hashes(hashes)
            hashes = []
        key = (entry.kind, entry.record_id)
        if key in looking and key not in found:
            found[key] = entry
    tree.extend_leaf_hashes(hashes)
    if tree.size != checkpoint.size or tree.root().hex() != checkpoint.root:
        raise LedgerError(
            "the stored ledger does not give the checkpoint's root; run 'dscsa ledger verify'"
        )
    entries = list(found.items())
    paths = tree.inclusion_proofs((entry.index for _, entry in entries), checkpoint.size)
    # Neighbouring leaves share most proof nodes: one hex string per node, not per use.
    hexes: dict[bytes, str] = {}
    return {
        key: (entry, [hexes.get(node) or hexes.setdefault(node, node.hex()) for node in path])
        for (key, entry), path in zip(entries, paths, strict=True)
    }


def _reported_records(report: ReportData) -> dict[tuple[str, str], str]:
    """(kind, record ID) -> current digest of each verification and resolution in the report."""
    reported: dict[tuple[str, str], str] = {}
    for entry in report.verifications or ():
        kind, record_id, digest = verification_leaf(entry)
        reported[(kind, record_id)] = digest
    for record in report.exceptions:
        for position, resolution in enumerate(record.resolutions):
            kind, record_id, digest = resolution_leaf(record.exception_id, position, resolution)
            reported[(kind, record_id)] = digest
    return reported


def _note_mismatches(
    section: dict[str, Any],
    records: Sequence[EventRecord],
    documents: dict[str, str],
    reported: dict[tuple[str, str], str],
) -> None:
    """Records whose bytes no longer hash to what the ledger committed to: said, not hidden."""
    current = {("event", r.hash_id): event_digest(r.body) for r in records}
    current.update({("document", d): digest for d, digest in documents.items()})
    current.update(reported)
    for kind, record_id, digest, _, _ in section["records"]:
        if current.get((kind, record_id)) != digest:
            section["mismatched"].append([kind, record_id])


# --- writing ----------------------------------------------------------------------------------


async def _write_epcis_xml(work: Path, head: DocumentHead, records: Sequence[EventRecord]) -> None:
    signing_head = head.model_copy(update={"header": _with_placeholder(head.header)}, deep=False)
    await write_epcis_xml_async(work / "epcis.xml", signing_head, [r.body for r in records])


def _write_other_files(
    work: Path,
    head: DocumentHead,
    records: Sequence[EventRecord],
    contents: ScopeContents,
    products: dict[str, ProductRecord],
    parties: dict[str, PartyRecord],
    report: ReportData,
    public_pem: bytes,
) -> int:
    """Everything but epcis.xml; answers the number of transactions.csv rows."""
    with (work / "events.jsonld").open("wb") as stream:
        _write_jsonld(head, records, stream)
    with (work / "transactions.csv").open("w", encoding="utf-8", newline="") as text:
        transactions = write_transactions_csv(text, contents, products, parties)
    with (work / "report.html").open("w", encoding="utf-8") as text:
        write_report(text, report)
    (work / "public-key.pem").write_bytes(public_pem)
    return transactions


def _file_entries(work: Path) -> dict[str, Any]:
    return {name: _file_entry(work / name) for name in _CONTENT_FILES}


_CONTENT_FILES = (
    "epcis.xml",
    "events.jsonld",
    "transactions.csv",
    "report.html",
    "public-key.pem",
)


def _file_entry(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "size": path.stat().st_size}


def _write_jsonld(head: DocumentHead, records: Iterable[EventRecord], stream: BinaryIO) -> None:
    """EPCIS 2.0 with each event's stored JSON verbatim (its bytes are what the ledger holds)."""
    document, _ = head_to_jsonld(head.model_copy(update={"namespaces": {}}))
    document["epcisBody"] = {"eventList": []}
    opening = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    stream.write(opening[: -len("]}}")].encode())
    separator = b""
    for record in records:
        stream.write(separator)
        stream.write(record.body)
        separator = b","
    stream.write(b"]}}")


def _head(
    request: ExportRequest,
    sender_gln: str | None,
    generated: datetime,
    products: dict[str, ProductRecord],
    parties: dict[str, PartyRecord],
) -> DocumentHead:
    sender = Partner(identifier=_sgln(sender_gln), authority="GS1") if sender_gln else None
    sbdh = StandardBusinessDocumentHeader(
        sender=(sender,) if sender else (),
        receiver=(),
        document_identification=DocumentIdentification(
            instance_identifier=request.export_id, creation_date_and_time=generated
        ),
    )
    header = EPCISHeader(
        standard_business_document_header=sbdh,
        master_data=_vocabularies(products, parties),
        gs1ushc=GS1USHealthcareHeader(
            guideline_version="GS1 US DSCSA R1.3",
            dscsa_transaction_statement=DSCSATransactionStatement(
                affirm_transaction_statement=True, legal_notice=LEGAL_NOTICE
            ),
        ),
    )
    return DocumentHead(
        format=DocumentFormat.XML_1_2,
        schema_version="1.2",
        creation_date=generated,
        header=header,
        namespaces=dict(_NAMESPACES),
    )


def _sgln(gln: str) -> str:
    # The GLN as it stands: without a known company prefix length no SGLN URN can be formed.
    return gln


def _with_placeholder(header: EPCISHeader | None) -> EPCISHeader | None:
    if header is None:
        return None
    placeholder = XmlElement(namespace=DS_NS, name="Signature", attributes={"Id": "placeholder"})
    return header.model_copy(update={"extensions": (*header.extensions, placeholder)})


def _vocabularies(
    products: dict[str, ProductRecord], parties: dict[str, PartyRecord]
) -> tuple[Vocabulary, ...]:
    product_fields = (
        ("additionalTradeItemIdentification", "ndc"),
        ("additionalTradeItemIdentificationTypeCode", "ndc_type"),
        ("regulatedProductName", "name"),
        ("manufacturerOfTradeItemPartyName", "manufacturer"),
        ("dosageFormType", "dosage_form"),
        ("strengthDescription", "strength"),
        ("netContentDescription", "container_size"),
    )
    party_fields = (
        ("name", "name"),
        ("streetAddressOne", "street_address_one"),
        ("streetAddressTwo", "street_address_two"),
        ("city", "city"),
        ("state", "state"),
        ("postalCode", "postal_code"),
        ("countryCode", "country_code"),
    )
    vocabularies: list[Vocabulary] = []
    if products:
        elements = [_element(p.class_id, p, product_fields) for _, p in sorted(products.items())]
        vocabularies.append(
            Vocabulary(
                type="urn:epcglobal:epcis:vtype:EPCClass", vocabulary_element_list=tuple(elements)
            )
        )
    if parties:
        elements = [_element(p.party_id, p, party_fields) for _, p in sorted(parties.items())]
        vocabularies.append(
            Vocabulary(
                type="urn:epcglobal:epcis:vtype:Location", vocabulary_element_list=tuple(elements)
            )
        )
    return tuple(vocabularies)


def _element(
    element_id: str, record: ProductRecord | PartyRecord, names: Sequence[tuple[str, str]]
) -> VocabularyElement:
    attributes = tuple(
        VocabularyAttribute(id=_MDA + name, value=getattr(record, attribute))
        for name, attribute in names
        if getattr(record, attribute)
    )
    return VocabularyElement(id=element_id, attributes=attributes)


# --- XML signature ----------------------------------------------------------------------------


def _sign_xml_file(
    path: Path, request: ExportRequest, generated: datetime, limit: int
) -> dict[str, Any]:
    size = path.stat().st_size
    if size > limit:
        # The placeholder stays: an empty ds:Signature that verify-export knows to expect.
        return {
            "present": False,
            "reason": (
                f"epcis.xml has {size} bytes, above the {limit}-byte limit for in-memory XML "
                "signing; its integrity rests on the manifest signature and its SHA-256"
            ),
        }
    from signxml.algorithms import SignatureConstructionMethod
    from signxml.signer import XMLSigner

    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(key, request, generated)
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    root = etree.parse(str(path), parser).getroot()
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm="ecdsa-sha256",
        digest_algorithm="sha256",
    )
    signed = signer.sign(root, key=key, cert=[certificate])
    path.write_bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))
    return {
        "present": True,
        "method": "enveloped",
        "location": "EPCISDocument/EPCISHeader/ds:Signature",
        "algorithm": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "certificate": pem,
        "certificate_sha256": certificate.fingerprint(hashes.SHA256()).hex(),
    }


def _certificate(
    key: ec.EllipticCurvePrivateKey, request: ExportRequest, generated: datetime
) -> x509.Certificate:
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"dscsa-exchange export {request.export_id}")]
    )
    # Valid for decades: the bundle must still verify when it is audited years later.
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(generated - timedelta(days=1))
        .not_valid_after(generated + timedelta(days=365 * 30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


# --- transactions.csv -------------------------------------------------------------------------


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells starting with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _party_columns(party_id: str | None, parties: dict[str, PartyRecord]) -> list[str]:
    record = parties.get(party_id) if party_id else None
    return [party_id or "", (record.name or "") if record else "", record.address if record else ""]


def write_transactions_csv(
    text: io.TextIOBase | Any,
    contents: ScopeContents,
    products: dict[str, ProductRecord],
    parties: dict[str, PartyRecord],
) -> int:
    """One row per shipping event and product (GTIN + lot); answers the number of rows.

    Products are the innermost serials in scope: a case's items are counted, not the case.
    """
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    containers = {p for entries in contents.timelines.values() for e in entries for p in e.via}
    shipped: dict[str, dict[tuple[str, str], list[str]]] = {}
    for epc, entries in contents.timelines.items():
        state = contents.states.get(epc)
        if epc in containers or state is None or state.gtin is None:
            continue
        for entry in entries:
            if entry.facts.biz_step == "shipping":
                group = shipped.setdefault(entry.facts.hash_id, {})
                group.setdefault((state.gtin, state.lot or ""), []).append(epc)
    rows = 0
    for facts in contents.ordered_events():
        for (gtin, lot), epcs in sorted(shipped.get(facts.hash_id, {}).items()):
            writer.writerow(
                [_cell(v) for v in _row(facts, gtin, lot, epcs, contents, products, parties)]
            )
            rows += 1
    return rows


def _row(
    facts: EventFacts,
    gtin: str,
    lot: str,
    epcs: list[str],
    contents: ScopeContents,
    products: dict[str, ProductRecord],
    parties: dict[str, PartyRecord],
) -> list[object]:
    product = products.get(gtin)
    expiry = contents.states[epcs[0]].expiry
    transactions = facts.biz_transactions
    return [
        facts.hash_id,
        facts.event_time.date().isoformat(),
        facts.event_time.isoformat(),
        product.name if product else None,
        product.strength if product else None,
        product.dosage_form if product else None,
        product.ndc if product else None,
        product.container_size if product else None,
        len(epcs),
        gtin,
        lot,
        expiry.isoformat() if expiry else None,
        *_party_columns(facts.source("owning_party"), parties),
        *_party_columns(facts.destination("owning_party"), parties),
        facts.source("location"),
        facts.destination("location"),
        " ".join(value for type_, value in transactions if type_ == "po"),
        " ".join(value for type_, value in transactions if type_ == "desadv"),
        " ".join(sorted(epcs)),
    ]


# --- manifest and zip -------------------------------------------------------------------------


def _manifest(
    request: ExportRequest,
    generated: datetime,
    files: dict[str, Any],
    counts: dict[str, int],
    ledger_section: dict[str, Any],
    key_id: str,
    missing_events: list[str],
) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "export_id": request.export_id,
        "request": {
            key: value
            for key, value in request_to_dict(request).items()
            if key
            in (
                "requester_kind",
                "requester",
                "reason",
                "incident_number",
                "created_at",
                "created_by",
                "due_at",
            )
        },
        "scope": scope_to_dict(request.scope),
        "scope_description": request.scope.describe(),
        "generated_at": generated.isoformat(),
        "software": {"name": "dscsa-exchange", "version": package_version()},
        "files": files["files"],
        "counts": counts,
        "events_missing_from_store": missing_events,
        "signing": {
            "algorithm": "Ed25519",
            "key_id": key_id,
            "public_key_file": "public-key.pem",
            "signature_file": "manifest.sig",
        },
        "xml_signature": files["xml_signature"],
        "ledger": ledger_section,
    }


class _NotPlainJSON(Exception):
    """A value manifest_json leaves to json.dumps."""


def manifest_json(value: Any) -> str:
    """``json.dumps(value, indent=1, sort_keys=True)``, the same text, faster.

    json.dumps falls back to its pure-Python encoder whenever ``indent`` is set, which took
    about a second for the inclusion proofs of a 35,000-event export; this walks the plain
    JSON types itself (strings, booleans, None and floats still encoded by json's own C
    functions) and hands anything else to json.dumps.
    """
    try:
        return _encode(value, "\n")
    except _NotPlainJSON:
        return json.dumps(value, indent=1, sort_keys=True)


def _encode(value: Any, newline: str) -> str:
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is list or kind is tuple:
        return _encode_list(value, newline)
    if kind is dict:
        if not value:
            return "{}"
        if any(type(key) is not str for key in value):
            raise _NotPlainJSON
        inner = newline + " "
        entries = [_json_string(key) + ": " + _encode(value[key], inner) for key in sorted(value)]
        return "{" + inner + ("," + inner).join(entries) + newline + "}"
    if value is None or kind is bool or kind is float:
        return json.dumps(value)
    raise _NotPlainJSON


def _encode_list(value: list[Any] | tuple[Any, ...], newline: str) -> str:
    if not value:
        return "[]"
    inner = newline + " "
    kinds = set(map(type, value))
    items: Iterable[str]
    if kinds == {int}:
        items = map(int.__repr__, value)
    elif kinds == {str}:
        items = map(_json_string, value)
    else:
        items = [
            _json_string(item)
            if type(item) is str
            else int.__repr__(item)
            if type(item) is int
            else _encode(item, inner)
            for item in value
        ]
    return "[" + inner + ("," + inner).join(items) + newline + "]"


def _zip(work: Path, target: Path) -> tuple[str, int]:
    temporary = target.with_suffix(".partial")
    names = [*_CONTENT_FILES, "manifest.json", "manifest.sig"]
    # Level 1: the zip is the last, serial step of an export; on a 10,000-serial lot's
    # 132 MB of members it takes 0.6 s instead of level 6's 1.65 s for 14 MB instead of 12.
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name in names:
            z.write(work / name, arcname=name)
    temporary.replace(target)
    entry = _file_entry(target)
    return entry["sha256"], entry["size"]
