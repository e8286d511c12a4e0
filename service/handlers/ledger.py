"""``/ledger``: signed checkpoints, inclusion proofs and consistency proofs of the audit ledger."""

from __future__ import annotations

from aiohttp import web

from service.audit import KEYRING, LEDGER
from service.auth import Role, principal_of, require_role
from service.checkpoints import Checkpoint
from service.ledger import LedgerError
from service.state import STORE

__all__ = [
    "create_checkpoint",
    "get_consistency",
    "get_inclusion",
    "ledger_routes",
    "list_checkpoints",
]

_KINDS = ("event", "document", "verification", "exception_resolution", "recall")


def ledger_routes() -> list[web.RouteDef]:
    return [
        web.get("/ledger/checkpoints", list_checkpoints, allow_head=False),
        web.post("/ledger/checkpoints", create_checkpoint),
        web.get("/ledger/inclusion", get_inclusion, allow_head=False),
        web.get("/ledger/consistency", get_consistency, allow_head=False),
    ]


def _checkpoint_json(checkpoint: Checkpoint) -> dict[str, object]:
    return {
        "treeSize": checkpoint.size,
        "rootHash": checkpoint.root,
        "timestamp": checkpoint.timestamp,
        "keyID": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


async def list_checkpoints(request: web.Request) -> web.Response:
    await request.app[LEDGER].refresh()
    checkpoints = await request.app[LEDGER].store.checkpoints()
    keyring = request.app[KEYRING]
    keys = {info.key_id: keyring.public_pem(info.key_id).decode() for info in keyring.key_infos()}
    body = {
        "treeSize": request.app[LEDGER].size,
        "checkpoints": [_checkpoint_json(c) for c in checkpoints],
        "publicKeys": keys,
    }
    return web.json_response(body)


async def create_checkpoint(request: web.Request) -> web.Response:
    require_role(request, Role.OPERATOR)
    checkpoint = await request.app[LEDGER].checkpoint(request.app[KEYRING])
    return web.json_response(_checkpoint_json(checkpoint), status=201)


def _int_parameter(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"query parameter {name} must be a non-negative integer")
    return int(raw)


async def _require_visible(request: web.Request, kind: str, record: str) -> None:
    principal = principal_of(request)
    if principal.role is not Role.PARTNER:
        return
    visible = kind == "event" and await request.app[STORE].get_event(record, principal.visibility)
    if not visible:
        raise web.HTTPNotFound(text=f"no {kind} {record} that you may see")


async def get_inclusion(request: web.Request) -> web.Response:
    record = request.query.get("record")
    kind = request.query.get("kind", "event")
    if not record or kind not in _KINDS:
        raise web.HTTPBadRequest(text=f"give record=<ID> and kind in {', '.join(_KINDS)}")
    await _require_visible(request, kind, record)
    ledger = request.app[LEDGER]
    size = _int_parameter(request, "size")
    checkpoints = await ledger.store.checkpoints()
    signed = next((c for c in reversed(checkpoints) if size in (None, c.size)), None)
    try:
        entry = await ledger.store.find(kind, record)
        if size is None and signed is not None and entry is not None and entry.index < signed.size:
            size = signed.size
        proof = await ledger.inclusion(kind, record, size)
    except LedgerError as err:
        raise web.HTTPNotFound(text=str(err)) from err
    body = {
        "kind": proof.entry.kind,
        "record": proof.entry.record_id,
        "digest": proof.entry.digest,
        "leafIndex": proof.entry.index,
        "treeSize": proof.tree_size,
        "rootHash": proof.root,
        "path": list(proof.path),
        "checkpoint": _checkpoint_json(signed)
        if signed and signed.size == proof.tree_size
        else None,
    }
    return web.json_response(body)


async def get_consistency(request: web.Request) -> web.Response:
    old, new = _int_parameter(request, "from"), _int_parameter(request, "to")
    if old is None or new is None:
        raise web.HTTPBadRequest(text="give from=<tree size> and to=<tree size>")
    ledger = request.app[LEDGER]
    if new > ledger.size:
        await ledger.refresh()
    if new > ledger.size:
        raise web.HTTPNotFound(text=f"the ledger has {ledger.size} leaves")
    try:
        path = ledger.consistency(old, new)
    except LedgerError as err:
        raise web.HTTPBadRequest(text=str(err)) from err
    body = {
        "fromSize": old,
        "toSize": new,
        "fromRoot": ledger.root(old).hex(),
        "toRoot": ledger.root(new).hex(),
        "path": list(path),
    }
    return web.json_response(body)
