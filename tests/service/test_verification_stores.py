"""Verification log (SQLite append-only, mongomock-motor), lookup directory, ATP JWT check."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from mongomock_motor import AsyncMongoMockClient

from service.credentials import CredentialRejectedError, JwtPresentationCheck
from service.lookup_directory import DirectoryEntry, FileLookupDirectory
from service.mongo_verification_log import MongoVerificationLog
from service.sqlite_verification_log import SQLiteVerificationLog
from service.verification_log import LogFilter, VerificationLog, entry_digest, to_csv
from verification.ports import Direction, VerificationLogEntry

T = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _entry(n: int, **changes: Any) -> VerificationLogEntry:
    values: dict[str, Any] = {
        "entry_id": f"e{n}",
        "direction": Direction.INBOUND,
        "time": T + timedelta(minutes=n),
        "requestor": "p1",
        "responder": "0300011111116",
        "req_gln": "0399999999991",
        "corr_uuid": f"c{n}",
        "gtin": "00300010123455",
        "serial": str(n),
        "lot": "L1",
        "expiry": "270630",
        "context": "dscsaSaleableReturn",
        "status": 200,
        "verified": True,
        "failure_reason": None,
        "additional_info": None,
        "latency_ms": 1.5,
        "extras": {"version": "1.3.0"},
    }
    values.update(changes)
    return VerificationLogEntry(**values)


async def _exercise(log: VerificationLog) -> None:
    for n in range(4):
        entry = _entry(n, direction=Direction.OUTBOUND if n == 3 else Direction.INBOUND)
        # Every adapter answers the digest its ledger leaf commits to.
        assert await log.append(entry) == entry_digest(entry)
    assert [e.entry_id for e in await log.query(LogFilter())] == ["e0", "e1", "e2", "e3"]
    assert [e.serial for e in await log.query(LogFilter(serial="2"))] == ["2"]
    outbound = await log.query(LogFilter(direction=Direction.OUTBOUND))
    assert [e.entry_id for e in outbound] == ["e3"]
    window = LogFilter(since=T + timedelta(minutes=1), until=T + timedelta(minutes=3))
    assert [e.entry_id for e in await log.query(window)] == ["e1", "e2"]
    assert (await log.query(LogFilter(limit=1)))[0] == _entry(0)
    found = await log.entries(["e2", "e0", "missing"])
    assert found == {"e0": _entry(0), "e2": _entry(2)}


async def test_sqlite_log_round_trips_and_refuses_changes(tmp_path: Path) -> None:
    log = SQLiteVerificationLog(tmp_path / "v.sqlite")
    await log.open()
    await _exercise(log)
    await log.close()
    db = sqlite3.connect(tmp_path / "v.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE verifications SET gtin = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM verifications")
    db.close()


async def test_mongo_log_round_trips() -> None:
    # mongomock-motor emulates queries and the unique index; not server permissions.
    log = MongoVerificationLog(AsyncMongoMockClient()["vrs"])
    await log.open()
    await _exercise(log)


def test_csv_neutralises_formulas() -> None:
    text = to_csv([_entry(1, requestor="=cmd()", extras={})])
    header, row = text.splitlines()
    assert header.split(",")[:3] == ["time", "direction", "requestor"]
    assert ",'=cmd()," in row


async def test_lookup_directory_prefers_gtin_then_longest_prefix(tmp_path: Path) -> None:
    path = tmp_path / "ld.json"
    directory = FileLookupDirectory(path, environ={"TOKEN": "s3cret"})
    await directory.put(
        DirectoryEntry(key="061414", responder_id="short", base_url="https://a.example")
    )
    await directory.put(
        DirectoryEntry(
            key="0614141",
            responder_id="long",
            base_url="https://b.example",
            auth="bearer",
            credential="env:TOKEN",
        )
    )
    await directory.put(
        DirectoryEntry(key="00614141000036", responder_id="exact", base_url="https://c.example")
    )
    again = FileLookupDirectory(path, environ={"TOKEN": "s3cret"})
    again.load()
    exact = await again.resolve("00614141000036")
    assert exact is not None
    assert exact.responder_id == "exact"
    long = await again.resolve("10614141000057")
    assert long is not None
    assert long.responder_id == "long"
    assert long.headers == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(long)
    assert "s3cret" not in path.read_text()
    assert await again.resolve("00300010123455") is None
    assert await again.remove("061414")
    assert not await again.remove("061414")


ISSUER = "did:web:issuer.example"
HOLDER = "did:web:wholesaler.example"
CORR = "21ec2020-3aea-4069-a2dd-08002b30309d"


def _presentation(holder_key: Any, issuer_key: Any, alg: str, **changes: Any) -> str:
    holder_jwk = json.loads(
        jwt.algorithms.get_default_algorithms()[alg].to_jwk(holder_key.public_key())
    )
    now = int(time.time())
    credential = jwt.encode(
        {
            "iss": changes.get("iss", ISSUER),
            "sub": HOLDER,
            "iat": now,
            "exp": now + changes.get("vc_ttl", 3600),
            "vc": {"type": ["VerifiableCredential", changes.get("type", "DSCSAATPCredential")]},
            "cnf": {"jwk": holder_jwk},
        },
        issuer_key,
        algorithm=alg,
    )
    return jwt.encode(
        {
            "iss": HOLDER,
            "iat": now,
            "exp": now + 300,
            "nonce": changes.get("nonce", CORR),
            "vp": {"type": ["VerifiablePresentation"], "verifiableCredential": [credential]},
        },
        changes.get("signer", holder_key),
        algorithm=alg,
    )


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_jwt_presentation_accepted_and_rejected(alg: str) -> None:
    def key() -> Any:
        return (
            ec.generate_private_key(ec.SECP256R1())
            if alg == "ES256"
            else ed25519.Ed25519PrivateKey.generate()
        )

    issuer, holder, stranger = key(), key(), key()
    issuer_jwk = jwt.PyJWK(
        json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(issuer.public_key()))
    )
    check = JwtPresentationCheck("X-ATP-Credential", {ISSUER: issuer_jwk})
    good = _presentation(holder, issuer, alg)
    outcome = await check.check({"X-ATP-Credential": good}, corr_uuid=CORR.upper())
    assert (outcome.presented, outcome.holder, outcome.issuer) == (True, HOLDER, ISSUER)
    bad = {
        "missing": None,
        "other corrUUID": _presentation(
            holder, issuer, alg, nonce="00000000-0000-4000-8000-000000000000"
        ),
        "untrusted issuer": _presentation(holder, stranger, alg),
        "wrong type": _presentation(holder, issuer, alg, type="IdentityCredential"),
        "expired credential": _presentation(holder, issuer, alg, vc_ttl=-3600),
        "not the bound holder": _presentation(holder, issuer, alg, signer=stranger),
    }
    for why, token in bad.items():
        headers = {} if token is None else {"X-ATP-Credential": token}
        with pytest.raises(CredentialRejectedError):
            await check.check(headers, corr_uuid=CORR)
        assert why
    optional = JwtPresentationCheck("X-ATP-Credential", {ISSUER: issuer_jwk}, required=False)
    assert (await optional.check({}, corr_uuid=CORR)).presented is False
