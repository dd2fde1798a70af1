"""``consent-streams receipt``: make receipt signing keys, and verify a receipt with a JWKS."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from streams.security.receipts import (
    JWKS_PATH,
    InvalidReceipt,
    new_receipt_key,
    public_part,
    verify_receipt,
)

PROG = "consent-streams receipt"
#: Longest a JWKS download may take.
FETCH_TIMEOUT = 10.0


class Failed(Exception):
    """A problem to report on stderr (exit code ``code``)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Make keys that sign consent receipts (CONSENT_RECEIPT_KEYS), and check a "
        "receipt against the published keys.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "new-key",
        help="generate a signing key for CONSENT_RECEIPT_KEYS, with its public form for retiring",
    )
    commands.add_parser(
        "public-key",
        help="print the public: form of a configured key (read from stdin), to keep it "
        "published after rotating",
    )
    verify = commands.add_parser(
        "verify",
        help="check a receipt's signature and print its claims (exit 1 if it does not verify)",
        description="Prints the receipt's claims as JSON when a key of the JWKS signed it; "
        "exits 1 with the reason otherwise.",
    )
    verify.add_argument(
        "receipt",
        help="the compact JWS, or - to read it (or the API's receipt JSON) from stdin",
    )
    verify.add_argument(
        "--jwks",
        required=True,
        metavar="FILE|URL",
        help=f"the keys: a file, a worker's base URL, or the URL of its {JWKS_PATH}",
    )
    return parser


def read_token(argument: str) -> str:
    text = sys.stdin.read() if argument == "-" else argument
    text = text.strip()
    if text.startswith("{"):  # the API's answer: {"event_id", "receipt", "claims"}
        try:
            found = orjson.loads(text).get("receipt")
        except (orjson.JSONDecodeError, AttributeError):
            found = None
        if not isinstance(found, str):
            raise Failed("the JSON given has no receipt field")
        return found
    if not text:
        raise Failed("no receipt given")
    return text


def load_jwks(where: str) -> dict[str, Any]:
    if where.startswith(("http://", "https://")):
        url = where if where.endswith(".json") else where.rstrip("/") + JWKS_PATH
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:
                data = response.read()
        except urllib.error.HTTPError as exc:
            raise Failed(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Failed(f"cannot fetch {url}: {reason}") from None
    else:
        try:
            data = Path(where).read_bytes()
        except OSError as exc:
            raise Failed(f"cannot read {where}: {exc.strerror}") from None
    try:
        jwks = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Failed(f"{where} is not JSON") from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise Failed(f"{where} is not a JWKS (no keys list)")
    if not jwks["keys"]:
        raise Failed(f"{where} publishes no keys (receipt signing is not configured there)", 1)
    return jwks


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "new-key":
            key = new_receipt_key()
            print(f"key (CONSENT_RECEIPT_KEYS, newest first; keep it secret): {key}")
            print(f"public form (keeps its receipts verifying once retired): {public_part(key)}")
            return 0
        if args.command == "public-key":
            try:
                print(public_part(sys.stdin.readline().strip()))
            except ValueError as exc:
                raise Failed(f"not a receipt key: {exc}") from None
            return 0
        if args.command == "verify":
            token = read_token(args.receipt)
            jwks = load_jwks(args.jwks)
            try:
                claims = verify_receipt(token, jwks)
            except InvalidReceipt as exc:
                raise Failed(f"receipt does not verify: {exc}", 1) from None
            sys.stdout.write(orjson.dumps(claims, option=orjson.OPT_INDENT_2).decode() + "\n")
            print("receipt verifies", file=sys.stderr)
            return 0
    except Failed as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.code
    raise AssertionError(args.command)  # pragma: no cover
