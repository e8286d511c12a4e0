"""``dscsa keys``: generate, list, rotate and export the ledger and export signing keys."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from service.keys import KeyRing, KeyRingError, passphrase_from_environment

__all__ = ["default_keys_dir", "register"]


def default_keys_dir() -> Path:
    return Path(os.environ.get("DSCSA_DATA_DIR", "var")) / "keys"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="manage signing keys",
        description="Signing keys are Ed25519, stored encrypted with the passphrase from "
        "DSCSA_KEY_PASSPHRASE or the file named by DSCSA_KEY_PASSPHRASE_FILE.",
    )
    parser.add_argument("--keys-dir", type=Path, default=None, help="default: $DSCSA_DATA_DIR/keys")
    actions = parser.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    actions.add_parser("generate", help="create a key (active if there is none)")
    listing = actions.add_parser("list", help="list keys with their status")
    listing.add_argument("--json", action="store_true")
    actions.add_parser("rotate", help="create a new active key; older keys keep verifying")
    export = actions.add_parser("export-public", help="print a public key as PEM")
    export.add_argument("key_id", nargs="?", help="default: the active key")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    folder = args.keys_dir or default_keys_dir()
    try:
        keyring = KeyRing(folder, passphrase_from_environment())
        return _ACTIONS[args.keys_action](keyring, args)
    except KeyRingError as err:
        print(f"dscsa keys: {err}", file=sys.stderr)
        return 1


def _generate(keyring: KeyRing, args: argparse.Namespace) -> int:
    info = keyring.generate()
    print(f"{info.key_id} {info.status}")
    return 0


def _rotate(keyring: KeyRing, args: argparse.Namespace) -> int:
    info = keyring.rotate()
    print(f"{info.key_id} {info.status}")
    return 0


def _list(keyring: KeyRing, args: argparse.Namespace) -> int:
    infos = keyring.key_infos()
    if args.json:
        print(json.dumps([asdict(info) for info in infos], indent=2))
    else:
        for info in infos:
            print(f"{info.key_id}  {info.algorithm}  {info.created_at}  {info.status}")
    return 0


def _export_public(keyring: KeyRing, args: argparse.Namespace) -> int:
    sys.stdout.write(keyring.public_pem(args.key_id).decode())
    return 0


_ACTIONS = {
    "generate": _generate,
    "rotate": _rotate,
    "list": _list,
    "export-public": _export_public,
}
