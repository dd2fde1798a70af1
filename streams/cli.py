"""``consent-streams``: the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.core.policy import PolicyError, load_policy
from streams.settings import ENVIRONMENT, Settings, SettingsError

_ENV_HELP = "configuration (environment):\n" + "\n".join(
    f"  {var:<34} {Settings.model_fields[field].description or ''}"
    for var, field in ENVIRONMENT.items()
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-streams",
        description="Event-driven consent and preference stream processor.",
        epilog=_ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "worker",
        help="run a worker (starts an embedded broker if KAFKA_BOOTSTRAP_SERVERS is unset)",
        epilog=_ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo = commands.add_parser(
        "demo", help="embedded broker + worker + a scripted scenario, printed as tables"
    )
    demo.add_argument(
        "--exit",
        action="store_true",
        help="stop after the scenario instead of keeping the worker up",
    )
    broker = commands.add_parser("broker", help="run only the embedded broker until Ctrl-C")
    broker.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: free)")
    commands.add_parser("check-policy", help="validate the policy file and print its purposes")
    keys = commands.add_parser("keys", help="make keys for sealing personal data")
    made = keys.add_subparsers(dest="keys_command", metavar="KEY", required=True)
    kek = made.add_parser("new-kek", help="a key-encryption key for CONSENT_DATA_KEYS")
    kek.add_argument("--id", default=None, help="its id (default: kek-<UTC date>)")
    made.add_parser("new-identifier-key", help="the HMAC key for CONSENT_IDENTIFIER_KEY")
    for name, help_text in (
        ("token", "mint one-click unsubscribe / double opt-in tokens (see: token --help)"),
        ("receipt", "make consent receipt keys, verify a receipt (see: receipt --help)"),
        ("proof", "ask a worker whether a purpose was allowed at a time, and why"),
        ("export", "everything held about a subject, from a worker (JSON or HTML)"),
        ("bench", "run the benchmark harness (see: bench --help)"),
        ("reconsent", "list the subjects a notice change needs asked again (see: --help)"),
        ("deadlines", "deadline clocks: the auditor's report, open clocks (see: --help)"),
        ("ledger", "check the consent ledger's hash chains (see: ledger verify --help)"),
    ):
        sub = commands.add_parser(name, help=help_text, add_help=False)
        sub.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # These commands own their options (argparse would swallow the ones that start with "--").
    if argv and argv[0] == "bench":
        from bench.harness import main as bench_main

        return bench_main(argv[1:])
    if argv and argv[0] == "ledger":
        from streams.ledger_cli import main as ledger_main

        return ledger_main(argv[1:])
    if argv and argv[0] == "token":
        from streams.web.tokens_cli import main as token_main

        return token_main(argv[1:])
    if argv and argv[0] == "receipt":
        from streams.web.receipts_cli import main as receipt_main

        return receipt_main(argv[1:])
    if argv and argv[0] in ("proof", "export"):
        from streams.web.client_cli import main as client_main

        return client_main(argv[0], argv[1:])
    if argv and argv[0] in ("reconsent", "deadlines"):
        from streams.web.clocks_cli import deadlines_main, reconsent_main

        return (reconsent_main if argv[0] == "reconsent" else deadlines_main)(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "keys":
        return _keys(args)
    try:
        settings = Settings.from_env()
        policy = load_policy(settings.policy_file)
        if args.command == "worker":
            settings.personal_keys()  # configured, or the embedded broker's for the run
    except (SettingsError, PolicyError) as exc:
        print(f"consent-streams: {exc}", file=sys.stderr)
        return 2
    if args.command == "worker":
        from streams.webapi import attach_api
        from streams.worker import run_worker

        return run_worker(settings, policy, attach=attach_api)
    if args.command == "demo":
        from streams.demo import run_demo

        return run_demo(settings, keep_running=not args.exit)
    if args.command == "broker":
        from streams.broker import EmbeddedBroker, wait_forever

        with EmbeddedBroker(port=args.port) as running:
            print(f"embedded broker on {running.bootstrap} (Ctrl-C to stop)", flush=True)
            wait_forever()
        return 0
    if args.command == "check-policy":
        for controller in policy.controllers.values():
            print(f"{controller.id}  {controller.name}")
            for purpose in controller.purposes.values():
                channels = ",".join(purpose.channels)
                print(f"  {purpose.name:<24} {purpose.legal_basis.value:<20} {channels}")
        return 0
    raise AssertionError(args.command)  # pragma: no cover


def _keys(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from streams.security.shredding import KeyMaterialError, Keyring, new_key

    if args.keys_command == "new-identifier-key":
        print(new_key())
        return 0
    entry = f"{args.id or datetime.now(UTC).strftime('kek-%Y%m%d')}:{new_key()}"
    try:
        Keyring.parse(entry)
    except KeyMaterialError as exc:
        print(f"consent-streams keys: {exc}", file=sys.stderr)
        return 2
    print(entry)
    print("put it first in CONSENT_DATA_KEYS; keep the older keys after it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
