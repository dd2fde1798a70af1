"""``consent-streams proof`` and ``consent-streams export``: ask a worker's API from the shell.

The API key comes from the environment (CONSENT_API_KEY) or a file (--key-file), never from
the command line, where other users of the machine could read it in the process list.
Exports hold personal data: files written with -o are readable by their owner only.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson

from schemas.vocabulary import Channel
from streams.settings import DEFAULT_WEB_PORT

KEY_VARIABLE = "CONSENT_API_KEY"
URL_VARIABLE = "CONSENT_API_URL"
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_WEB_PORT}"
TIMEOUT = 30.0


class Failed(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_VARIABLE, DEFAULT_URL),
        help=f"a worker's base URL (default: ${URL_VARIABLE}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the API key (default: the {KEY_VARIABLE} environment variable)",
    )
    parser.add_argument("--controller", required=True, help="controller id, as in the policy")
    parser.add_argument("--subject", required=True, help="the subject id")
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here instead of stdout"
    )


def parser_for(command: str) -> argparse.ArgumentParser:
    epilog = (
        f"The API key is read from ${KEY_VARIABLE} or --key-file, never from the command line. "
        "Exit codes: 0 done, 1 the worker refused or could not be reached, 2 usage."
    )
    if command == "proof":
        parser = argparse.ArgumentParser(
            prog="consent-streams proof",
            description="Was a purpose allowed on a channel at a time, and which recorded "
            "statements (with their evidence) say so? Prints the worker's JSON (API key scope: "
            "read).",
            epilog=epilog,
        )
        _common(parser)
        parser.add_argument("--purpose", required=True)
        parser.add_argument("--channel", required=True, choices=[c.value for c in Channel])
        parser.add_argument("--at", help="RFC 3339 time, e.g. 2026-11-20T10:00:00Z (default: now)")
        parser.add_argument("--known-at", help="RFC 3339: count only statements recorded by then")
        return parser
    parser = argparse.ArgumentParser(
        prog="consent-streams export",
        description="Everything held about a subject at a controller, for an access or "
        "portability request: JSON, or with --html a page to give the person (API key scope: "
        "export).",
        epilog=epilog,
    )
    _common(parser)
    parser.add_argument("--html", action="store_true", help="the readable page instead of JSON")
    return parser


def api_key(key_file: Path | None) -> str:
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise Failed(f"cannot read {key_file}: {exc.strerror}", 2) from None
    else:
        key = os.environ.get(KEY_VARIABLE, "").strip()
    if not key:
        raise Failed(f"no API key: set {KEY_VARIABLE} or pass --key-file", 2)
    return key


def path_for(command: str, args: argparse.Namespace) -> str:
    subject = f"/v1/controllers/{quote(args.controller, safe='')}/subjects/" + quote(
        args.subject, safe=""
    )
    if command == "proof":
        query = {"channel": args.channel}
        query |= {k: v for k, v in (("at", args.at), ("known_at", args.known_at)) if v}
        return f"{subject}/proof/{quote(args.purpose, safe='')}?{urlencode(query)}"
    return f"{subject}/export?format={'html' if args.html else 'json'}"


def fetch(url: str, key: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        raise Failed(f"the worker answered {exc.code}: {_error_of(exc.read())}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Failed(f"cannot reach {url.split('/v1/')[0]}: {reason}") from None


def _error_of(body: bytes) -> str:
    try:
        found = orjson.loads(body)
        return f"{found['error']}: {found['message']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body[:200].decode(errors="replace") or "(no details)"


def write(body: bytes, output: Path | None) -> None:
    if not body.endswith(b"\n"):
        body += b"\n"
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    try:  # personal data: readable by the owner only
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(body)
    except OSError as exc:
        raise Failed(f"cannot write {output}: {exc.strerror}", 2) from None


def main(command: str, argv: list[str]) -> int:
    args = parser_for(command).parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        print(f"consent-streams {command}: --url must be an http(s) URL", file=sys.stderr)
        return 2
    try:
        key = api_key(args.key_file)
        body = fetch(args.url.rstrip("/") + path_for(command, args), key)
        write(body, args.output)
    except Failed as exc:
        print(f"consent-streams {command}: {exc}", file=sys.stderr)
        return exc.code
    return 0
