"""``dscsa partners add|list|revoke``: manage who may call the service, in the configured store."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from service.app import open_store
from service.partners import ROLES, add_partner
from service.settings import Settings, SettingsError
from service.store import EventStore

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("partners", help="manage trading partners and their tokens")
    actions = parser.add_subparsers(dest="partners_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a partner and print its token (shown only once)")
    add.add_argument("--name", required=True)
    add.add_argument("--gln", required=True, help="the partner's 13-digit GLN")
    add.add_argument("--role", choices=ROLES, default="partner")
    listing = actions.add_parser("list", help="list partners (never their tokens)")
    listing.add_argument("--json", action="store_true")
    revoke = actions.add_parser("revoke", help="revoke a partner's token")
    revoke.add_argument("partner_id")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_environ()
    except SettingsError as error:
        print(f"dscsa partners: {error}", file=sys.stderr)
        return 2
    action = _ACTIONS[args.partners_action]
    try:
        return asyncio.run(_with_store(settings, lambda store: action(store, args)))
    except ValueError as error:
        print(f"dscsa partners: {error}", file=sys.stderr)
        return 2


async def _with_store(settings: Settings, work: Callable[[EventStore], Awaitable[int]]) -> int:
    store = open_store(settings)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


async def _add(store: EventStore, args: argparse.Namespace) -> int:
    issued = await add_partner(store, args.name, args.gln, args.role)
    print(f"partner {issued.record.partner_id} ({issued.record.role}) added", file=sys.stderr)
    print("its token, shown only this once:", file=sys.stderr)
    print(issued.token)
    return 0


async def _list(store: EventStore, args: argparse.Namespace) -> int:
    partners = await store.list_partners()
    rows = [
        {
            "partnerID": p.partner_id,
            "name": p.name,
            "gln": p.gln,
            "role": p.role,
            "createdAt": p.created_at.isoformat(),
            "revokedAt": p.revoked_at.isoformat() if p.revoked_at else None,
        }
        for p in partners
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = f"revoked {row['revokedAt']}" if row["revokedAt"] else "active"
        print(f"{row['partnerID']}  {row['role']:<8}  {row['gln']}  {state}  {row['name']}")
    return 0


async def _revoke(store: EventStore, args: argparse.Namespace) -> int:
    if await store.revoke_partner(args.partner_id, datetime.now(UTC)):
        print(f"partner {args.partner_id} revoked")
        return 0
    print(f"dscsa partners: no active partner {args.partner_id}", file=sys.stderr)
    return 1


_ACTIONS: dict[str, Callable[[EventStore, argparse.Namespace], Awaitable[int]]] = {
    "add": _add,
    "list": _list,
    "revoke": _revoke,
}
