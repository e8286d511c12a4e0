"""Offline verification of an export bundle: needs only the zip (and optionally a pinned key).

Checked, in order: the set of files; the manifest's Ed25519 signature (with the pinned public
key if given, else the bundled ``public-key.pem``); the SHA-256 and size of every file; the
ledger checkpoint's signature; every inclusion proof against the checkpoint's root; that every
event in ``events.jsonld`` hashes to the digest of a proven ledger leaf; and the XML signature
of ``epcis.xml`` against the certificate the signed manifest names.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson  # type: ignore[import-untyped,unused-ignore]
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from lxml import etree

from service.checkpoints import Checkpoint, verify_checkpoint
from service.keys import KeyRingError, key_id_of, load_public_key, verify_signature
from service.ledger import leaf_data
from service.merkle import leaf_hash, verify_inclusion

__all__ = [
    "BUNDLE_FILES",
    "Check",
    "VerificationReport",
    "signature_file_bytes",
    "verify_bundle",
]

BUNDLE_FILES = (
    "epcis.xml",
    "events.jsonld",
    "transactions.csv",
    "report.html",
    "public-key.pem",
    "manifest.json",
    "manifest.sig",
)
_SIGNED_FILES = BUNDLE_FILES[:5]
_FORMAT = "dscsa-export-bundle/v1"
_MANIFEST_HEADER = b"dscsa-export-manifest/v1\n"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class VerificationReport:
    key_source: str = ""
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]


def signature_file_bytes(key_id: str, signature: bytes) -> bytes:
    """``manifest.sig`` in its one accepted spelling: any other byte sequence is a change."""
    body = {
        "algorithm": "Ed25519",
        "key_id": key_id,
        "signed": "the bytes 'dscsa-export-manifest/v1\\n' followed by manifest.json",
        "signature": base64.b64encode(signature).decode(),
    }
    return json.dumps(body, indent=1).encode() + b"\n"


class _Stop(Exception):
    """Nothing further can be checked."""


def verify_bundle(path: Path, public_key_pem: bytes | None = None) -> VerificationReport:
    report = VerificationReport()
    try:
        members = _read_members(path, report)
        key = _trusted_key(members, public_key_pem, report)
        manifest = _manifest(members, key, report)
        _file_hashes(members, manifest, report)
        _ledger(members, manifest, key, report)
        _xml_signature(members, manifest, report)
    except _Stop:
        pass
    return report


def _read_members(path: Path, report: VerificationReport) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as bundle:
            names = bundle.namelist()
            unexpected = sorted(set(names) - set(BUNDLE_FILES))
            missing = sorted(set(BUNDLE_FILES) - set(names))
            if unexpected or missing or len(names) != len(set(names)):
                report.add(
                    "files",
                    False,
                    f"unexpected: {', '.join(unexpected) or 'none'}; "
                    f"missing: {', '.join(missing) or 'none'}; duplicates: "
                    f"{len(names) - len(set(names))}",
                )
                raise _Stop
            # ZipFile checks each member's CRC-32 as it reads.
            members = {name: bundle.read(name) for name in BUNDLE_FILES}
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as error:
        report.add("zip", False, f"not a readable zip archive: {error}")
        raise _Stop from None
    except Exception as error:  # zlib.error and friends from a damaged deflate stream
        report.add("zip", False, f"damaged zip archive: {type(error).__name__}: {error}")
        raise _Stop from None
    report.add("zip", True, f"{len(members)} files, CRC-32 intact")
    return members


def _trusted_key(
    members: dict[str, bytes], pinned: bytes | None, report: VerificationReport
) -> Ed25519PublicKey:
    try:
        bundled = load_public_key(members["public-key.pem"])
    except (ValueError, KeyRingError) as error:
        bundled = None
        bundled_problem = str(error)
    if pinned is not None:
        try:
            key = load_public_key(pinned)
        except (ValueError, KeyRingError) as error:
            report.add("public key", False, f"the pinned public key is unusable: {error}")
            raise _Stop from None
        report.key_source = f"pinned key {key_id_of(key)} (--public-key)"
        if bundled is None or key_id_of(bundled) != key_id_of(key):
            report.add(
                "public key",
                False,
                "the bundled public-key.pem is not the pinned key "
                f"({key_id_of(bundled) if bundled else 'unreadable'} vs {key_id_of(key)})",
            )
        return key
    if bundled is None:
        report.add("public key", False, f"public-key.pem is unusable: {bundled_problem}")
        raise _Stop
    report.key_source = (
        f"bundled key {key_id_of(bundled)} (public-key.pem; pass --public-key to pin one)"
    )
    return bundled


def _manifest(
    members: dict[str, bytes], key: Ed25519PublicKey, report: VerificationReport
) -> dict[str, Any]:
    try:
        signature_file = json.loads(members["manifest.sig"])
        signature = base64.b64decode(signature_file["signature"], validate=True)
        signer = str(signature_file["key_id"])
    except (ValueError, KeyError, TypeError) as error:
        report.add("manifest signature", False, f"manifest.sig is malformed: {error}")
        raise _Stop from None
    if members["manifest.sig"] != signature_file_bytes(signer, signature):
        report.add("manifest signature", False, "manifest.sig is not in its exact signed form")
        raise _Stop
    good = verify_signature(key, signature, _MANIFEST_HEADER + members["manifest.json"])
    if not report.add(
        "manifest signature",
        good and signer == key_id_of(key),
        f"Ed25519 by key {signer}, checked with the {report.key_source}"
        if good and signer == key_id_of(key)
        else f"does not verify with the {report.key_source} (manifest.sig names key {signer})",
    ):
        raise _Stop
    try:
        manifest: dict[str, Any] = json.loads(members["manifest.json"])
    except ValueError as error:
        report.add("manifest", False, f"manifest.json is not JSON: {error}")
        raise _Stop from None
    if not report.add(
        "manifest", manifest.get("format") == _FORMAT, f"format {manifest.get('format')!r}"
    ):
        raise _Stop
    return manifest


def _file_hashes(
    members: dict[str, bytes], manifest: dict[str, Any], report: VerificationReport
) -> None:
    listed = manifest.get("files", {})
    for name in _SIGNED_FILES:
        entry = listed.get(name)
        data = members[name]
        if entry is None:
            report.add(f"file {name}", False, "not listed in the manifest")
            continue
        digest = hashlib.sha256(data).hexdigest()
        same = digest == entry.get("sha256") and len(data) == entry.get("size")
        report.add(
            f"file {name}",
            same,
            f"SHA-256 {digest}"
            if same
            else f"altered: SHA-256 is {digest} ({len(data)} bytes), the manifest says "
            f"{entry.get('sha256')} ({entry.get('size')} bytes)",
        )


def _checkpoint_key(
    ledger: dict[str, Any], checkpoint: Checkpoint, trusted: Ed25519PublicKey
) -> Ed25519PublicKey | None:
    if checkpoint.key_id == key_id_of(trusted):
        return trusted
    # Another (e.g. older) key: trusted because the signed manifest names it.
    try:
        key = load_public_key(str(ledger.get("checkpoint_public_key", "")).encode())
    except (ValueError, KeyRingError):
        return None
    return key if key_id_of(key) == checkpoint.key_id else None


def _ledger(
    members: dict[str, bytes],
    manifest: dict[str, Any],
    trusted: Ed25519PublicKey,
    report: VerificationReport,
) -> None:
    ledger = manifest.get("ledger") or {}
    try:
        checkpoint = Checkpoint.from_json(ledger["checkpoint"])
    except (KeyError, TypeError, ValueError) as error:
        report.add("ledger checkpoint", False, f"no usable checkpoint in the manifest: {error}")
        return
    key = _checkpoint_key(ledger, checkpoint, trusted)
    report.add(
        "ledger checkpoint",
        key is not None and verify_checkpoint(checkpoint, key),
        f"tree size {checkpoint.size}, root {checkpoint.root}, signed by key "
        f"{checkpoint.key_id} at {checkpoint.timestamp}",
    )
    proven = _inclusion_proofs(ledger, checkpoint, report)
    _events_against_ledger(members, ledger, proven, manifest, report)


def _inclusion_proofs(
    ledger: dict[str, Any], checkpoint: Checkpoint, report: VerificationReport
) -> Counter[str]:
    nodes = [bytes.fromhex(node) for node in ledger.get("nodes", [])]
    root = bytes.fromhex(checkpoint.root)
    bad: list[str] = []
    proven_events: Counter[str] = Counter()
    records = ledger.get("records", [])
    for kind, record_id, digest, index, path in records:
        leaf = leaf_hash(leaf_data(kind, record_id, digest))
        try:
            proof = [nodes[i] for i in path]
        except (IndexError, TypeError):
            proof = None
        if proof is None or not verify_inclusion(leaf, index, checkpoint.size, proof, root):
            bad.append(f"{kind} {record_id}")
        elif kind == "event":
            proven_events[digest] += 1
    missing = ledger.get("missing", [])
    note = f"; {len(missing)} record(s) had no ledger leaf at export time" if missing else ""
    report.add(
        "inclusion proofs",
        not bad,
        f"{len(records)} records proven against the checkpoint root{note}"
        if not bad
        else f"{len(bad)} of {len(records)} proofs fail, first: {', '.join(bad[:3])}",
    )
    mismatched = ledger.get("mismatched", [])
    if mismatched:
        report.add(
            "ledger digests",
            False,
            f"{len(mismatched)} record(s) no longer match what the ledger committed to, "
            f"first: {' '.join(mismatched[0])}",
        )
    return proven_events


def _events_against_ledger(
    members: dict[str, bytes],
    ledger: dict[str, Any],
    proven: Counter[str],
    manifest: dict[str, Any],
    report: VerificationReport,
) -> None:
    found: Counter[str] = Counter()
    try:
        stream = io.BytesIO(members["events.jsonld"])
        for event in ijson.items(stream, "epcisBody.eventList.item", use_float=True):
            compact = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            found[hashlib.sha256(compact.encode()).hexdigest()] += 1
    except (ijson.JSONError, ValueError, UnicodeDecodeError) as error:
        report.add("events", False, f"events.jsonld cannot be read: {error}")
        return
    unproven = found - proven
    not_exported = proven - found
    allowed = sum(1 for kind, _ in ledger.get("missing", []) if kind == "event")
    expected = manifest.get("counts", {}).get("events")
    total = sum(found.values())
    ok = not not_exported and sum(unproven.values()) <= allowed and total == expected
    report.add(
        "events",
        ok,
        f"{total} events, each the bytes of a proven ledger leaf"
        + (f" ({sum(unproven.values())} without a leaf, as the manifest says)" if unproven else "")
        if ok
        else f"{total} events (manifest: {expected}); {sum(unproven.values())} match no "
        f"proven leaf; {sum(not_exported.values())} proven events are not in events.jsonld",
    )


def _xml_signature(
    members: dict[str, bytes], manifest: dict[str, Any], report: VerificationReport
) -> None:
    info = manifest.get("xml_signature") or {}
    if not info.get("present"):
        report.add("XML signature", True, f"not XML-signed: {info.get('reason', 'no reason')}")
        return
    from signxml.exceptions import InvalidInput, SignXMLException
    from signxml.verifier import SignatureConfiguration, XMLVerifier

    try:
        certificate = x509.load_pem_x509_certificate(str(info["certificate"]).encode())
    except (KeyError, ValueError) as error:
        report.add("XML signature", False, f"the manifest's certificate is unusable: {error}")
        return
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    if fingerprint != info.get("certificate_sha256"):
        report.add("XML signature", False, "certificate fingerprint differs from the manifest's")
        return
    config = SignatureConfiguration(location="./EPCISHeader/", expect_references=1)
    try:
        result = XMLVerifier().verify(
            members["epcis.xml"], x509_cert=certificate, expect_config=config
        )
    except (SignXMLException, InvalidInput, ValueError, etree.LxmlError) as error:
        report.add("XML signature", False, f"epcis.xml: {type(error).__name__}: {error}")
        return
    signed = getattr(result, "signed_xml", None)
    whole = signed is not None and signed.tag.endswith("EPCISDocument")
    report.add(
        "XML signature",
        whole,
        f"enveloped ECDSA P-256 signature over the whole document, certificate {fingerprint[:16]}"
        if whole
        else "the XML signature does not cover the whole document",
    )
