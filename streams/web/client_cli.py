"""``consent-streams proof`` and ``consent-streams export``: ask a worker's API from the shell.

The API key comes from the environment (CONSENT_API_KEY) or a file (--key-file), never from
the command line, where other users of the machine could read it in the process list.
Exports hold personal data: files written with -o are readable by their owner only.

``export --fulfils <request event id>`` answers an access request: once the export is written,
it publishes ``access.fulfilled`` naming the request over ``POST /v1/events``, which stops the
request's deadline clock (docs/clocks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson

from schemas.vocabulary import Channel
from streams.settings import DEFAULT_WEB_PORT

KEY_VARIABLE = "CONSENT_API_KEY"
URL_VARIABLE = "CONSENT_API_URL"
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_WEB_PORT}"
TIMEOUT = 30.0
#: The contract's longest event id (schemas/events.py).
MAX_EVENT_ID = 128


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
    parser.add_argument(
        "--fulfils",
        metavar="REQUEST_EVENT_ID",
        type=_request_id,
        help="the event_id of the access.requested this export answers: once the export is "
        "written, publish access.fulfilled for it (the key then also needs scope write)",
    )
    return parser


def _request_id(value: str) -> str:
    if not 1 <= len(value) <= MAX_EVENT_ID:
        raise argparse.ArgumentTypeError(f"an event id has 1 to {MAX_EVENT_ID} characters")
    return value


def fulfilment(args: argparse.Namespace, now: datetime) -> dict[str, str]:
    """The ``access.fulfilled`` event for the request ``--fulfils`` names, handed over at
    ``now``. A new id per run: a fulfilment of a request already fulfilled changes nothing."""
    return {
        "event_id": f"access-fulfilled-{uuid.uuid4().hex}",
        "type": "access.fulfilled",
        "occurred_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "controller": args.controller,
        "subject_id": args.subject,
        "request_id": args.fulfils,
        "source": "consent-streams export",
    }


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


def fetch(url: str, key: str, sent: bytes | None = None) -> bytes:
    """GET ``url``, or POST ``sent`` (JSON) to it."""
    headers = {"Authorization": f"Bearer {key}"}
    if sent is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=sent, headers=headers)
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
        if getattr(args, "fulfils", None):
            publish_fulfilment(args, key)
    except Failed as exc:
        print(f"consent-streams {command}: {exc}", file=sys.stderr)
        return exc.code
    return 0


def publish_fulfilment(args: argparse.Namespace, key: str) -> None:
    """Publish ``access.fulfilled`` for the request the export answered (it is written)."""
    event = fulfilment(args, datetime.now(UTC))
    try:
        fetch(args.url.rstrip("/") + "/v1/events", key, orjson.dumps(event))
    except Failed as exc:
        raise Failed(
            f"the export is written, but access.fulfilled for request {args.fulfils} was not "
            f"published ({exc}); publish it, or run the export again"
        ) from None
    print(
        f"published access.fulfilled {event['event_id']} for request {args.fulfils}",
        file=sys.stderr,
    )
