"""``consent-streams token``: mint links, and make API keys and secrets for the configuration."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.codec import field_errors
from schemas.vocabulary import Channel
from streams.core.engine import Engine
from streams.core.policy import PolicyError, load_policy
from streams.security.apikeys import ApiKeyError, Scope, generate_key, hash_key, parse_entry
from streams.security.tokens import Signer, TokenKind, new_secret
from streams.settings import Settings, SettingsError
from streams.web.links import InsecureLinks, check_base_url, mint
from streams.web.models import MAX_TTL_SECONDS, TokenRequest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-streams token",
        description="Mint unsubscribe / confirmation links; make API keys and token secrets. "
        "Minting reads CONSENT_TOKEN_SECRET, CONSENT_PUBLIC_URL (https://), "
        "CONSENT_ALLOW_INSECURE_LINKS and CONSENT_POLICY_FILE.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for kind, text in (
        (TokenKind.UNSUBSCRIBE, "a one-click unsubscribe link with its List-Unsubscribe headers"),
        (TokenKind.CONFIRM, "a double opt-in confirmation link"),
    ):
        sub = commands.add_parser(kind.value, help=text)
        sub.add_argument("--controller", required=True)
        sub.add_argument("--subject", required=True, help="the subject id")
        confirm = kind is TokenKind.CONFIRM
        sub.add_argument(
            "--purpose",
            required=confirm,
            help="the purpose confirmed"
            if confirm
            else "the purpose (default: every direct-marketing purpose)",
        )
        sub.add_argument("--channel", choices=[c.value for c in Channel])
        sub.add_argument(
            "--ttl",
            type=int,
            metavar="SECONDS",
            help="validity (default: unsubscribe never expires, confirm 7 days)",
        )
        sub.add_argument("--json", action="store_true", help="print the API's JSON instead")
    key = commands.add_parser("hash-key", help="print the SHA-256 digest to configure for a key")
    key.add_argument("key", nargs="?", help="the key (default: read one line from stdin)")
    new = commands.add_parser("new-key", help="generate an API key and its configuration entry")
    new.add_argument("--name", required=True)
    new.add_argument(
        "--scopes",
        default="read",
        help=f"comma-separated, of: {', '.join(s.value for s in Scope)} (default: read)",
    )
    commands.add_parser("new-secret", help="generate a value for CONSENT_TOKEN_SECRET")
    return parser


def _mint(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        policy = load_policy(settings.policy_file)
    except (SettingsError, PolicyError) as exc:
        print(f"consent-streams token: {exc}", file=sys.stderr)
        return 2
    if settings.token_secret is None:
        print("consent-streams token: CONSENT_TOKEN_SECRET is not set", file=sys.stderr)
        return 2
    try:
        check_base_url(settings.links_base_url, settings.allow_insecure_links)
    except InsecureLinks as exc:
        print(f"consent-streams token: {exc}", file=sys.stderr)
        return 2
    try:
        request = TokenRequest(
            kind=TokenKind(args.command),
            controller=args.controller,
            subject_id=args.subject,
            purpose=args.purpose,
            channel=Channel(args.channel) if args.channel else None,
            ttl_seconds=args.ttl,
        )
    except ValidationError as exc:
        for error in field_errors(exc):
            print(f"consent-streams token: {error.loc}: {error.msg}", file=sys.stderr)
        if args.ttl is not None and not 60 <= args.ttl <= MAX_TTL_SECONDS:
            print(f"  --ttl must be 60 to {MAX_TTL_SECONDS} seconds", file=sys.stderr)
        return 2
    signer = Signer.from_config(settings.token_secret.get_secret_value())
    minted = mint(signer, Engine(policy), request, settings.links_base_url, datetime.now(UTC))
    if isinstance(minted, list):
        for error in minted:
            print(f"consent-streams token: {error.loc or 'link'}: {error.msg}", file=sys.stderr)
        return 2
    if args.json:
        print(minted.model_dump_json(indent=2))
        return 0
    print(f"token: {minted.token}")
    print(f"url: {minted.url}")
    for name, value in minted.headers.items():
        print(f"{name}: {value}")
    print(f"expires: {minted.expires_at.isoformat() if minted.expires_at else 'never'}")
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command in (TokenKind.UNSUBSCRIBE.value, TokenKind.CONFIRM.value):
        return _mint(args)
    if args.command == "hash-key":
        key = args.key if args.key is not None else sys.stdin.readline().strip()
        if not key:
            print("consent-streams token: no key given", file=sys.stderr)
            return 2
        print(hash_key(key))
        return 0
    if args.command == "new-key":
        try:
            scopes = [Scope(s.strip()) for s in args.scopes.split(",") if s.strip()]
        except ValueError as exc:
            print(f"consent-streams token: {exc}", file=sys.stderr)
            return 2
        key = generate_key()
        entry = f"{args.name}:{'+'.join(s.value for s in scopes)}:{hash_key(key)}"
        try:
            parse_entry(entry)
        except ApiKeyError as exc:
            print(f"consent-streams token: {exc}", file=sys.stderr)
            return 2
        print(f"key (give to the client, store nowhere else): {key}")
        print(f"configuration entry (CONSENT_API_KEYS / CONSENT_API_KEYS_FILE): {entry}")
        return 0
    if args.command == "new-secret":
        print(new_secret())
        return 0
    raise AssertionError(args.command)  # pragma: no cover
