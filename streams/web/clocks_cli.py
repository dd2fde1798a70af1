"""``consent-streams reconsent`` and ``consent-streams deadlines``: gather what the workers'
APIs list (each answers for its active partitions) into one list or one report.

Every worker named with ``--url`` is asked (default: ``CONSENT_API_URL``, else this host's
default port), then every worker their answers name for the partitions not yet covered, so one
URL is enough when workers can reach each other's advertised addresses. A partition answered by
two workers (a rebalance under way) or by none is an error, so nothing is counted twice or
left out. The API key (scope ``read``) comes from ``CONSENT_API_KEY`` or
``--key-file``, never from the command line, as for ``proof`` and ``export``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from streams.core.clocks import Summary
from streams.web.client_cli import DEFAULT_URL, KEY_VARIABLE, URL_VARIABLE, Failed, api_key

EPILOG = (
    f"The API key (scope read) is read from ${KEY_VARIABLE} or --key-file, never from the "
    "command line. Exit codes: 0 done, 1 a worker refused, could not be reached or answered "
    "for a partition another did too, 2 usage."
)


class Gathered(Exception):
    """The workers' answers cannot be put together (an error, or a partition twice)."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        action="append",
        help=f"a worker's base URL; repeat for every worker (default: ${URL_VARIABLE}, else "
        f"{DEFAULT_URL})",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the API key (default: the {KEY_VARIABLE} environment variable)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _reconsent_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-streams reconsent",
        description="List the subjects to ask for consent again: a materially changed notice "
        "version superseded the consent they gave.",
        epilog=EPILOG,
    )
    parser.add_argument("controller")
    parser.add_argument("--purpose", help="only this purpose")
    _common(parser)
    return parser


def _deadlines_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-streams deadlines",
        description="Legal deadline clocks of opt-outs and requests.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    report = commands.add_parser(
        "report",
        help="per controller and rule: clocks closed, met, missed, open, worst, p50/p99",
    )
    _common(report)
    open_ = commands.add_parser("open", help="the open clocks, soonest deadline first")
    open_.add_argument("--controller")
    open_.add_argument("--rule")
    _common(open_)
    return parser


def _urls(given: Sequence[str] | None) -> list[str]:
    if given:
        return [url.rstrip("/") for url in given]
    return [os.environ.get(URL_VARIABLE, DEFAULT_URL).rstrip("/")]


async def _get(session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> Any:
    try:
        async with session.get(url, params=params) as response:
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Gathered(f"{url}: {type(exc).__name__}: {exc}") from None
    if response.status != 200:
        try:
            message = orjson.loads(body)["message"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            message = body[:200].decode(errors="replace")
        raise Gathered(f"{url}: HTTP {response.status}: {message}")
    return orjson.loads(body)


Ask = Callable[[aiohttp.ClientSession, str], Awaitable[dict[str, Any]]]


async def each_worker(urls: Sequence[str], key: str, ask: Ask) -> list[int]:
    """Ask every worker of ``urls``, then the workers the answers name for partitions none has
    covered yet (so one URL is enough), until every partition of the table is answered for.
    ``ask`` returns the worker's answer (its ``partitions`` and ``others``). Returns the
    partitions covered; a partition answered twice or by nobody is an error."""
    seen: dict[int, str] = {}
    table: set[int] = set()
    queue, asked = [url.rstrip("/") for url in urls], set[str]()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
        while queue:
            base = queue.pop(0)
            if base in asked:
                continue
            asked.add(base)
            answer = await ask(session, base)
            for partition in answer["partitions"]:
                if partition in seen:
                    raise Gathered(
                        f"partition {partition} was answered by {seen[partition]} and {base}: "
                        "a rebalance is under way; run again"
                    )
                seen[partition] = base
            others = {int(partition): owner for partition, owner in answer["others"].items()}
            table |= set(answer["partitions"]) | set(others)
            queue += [
                owner.rstrip("/")
                for partition, owner in sorted(others.items())
                if owner and partition not in seen
            ]
    missing = sorted(table - set(seen))
    if missing:
        raise Gathered(
            f"partitions {', '.join(map(str, missing))} were not answered: no worker is known to "
            "hold them (a rebalance?), or name their worker with --url"
        )
    return sorted(seen)


async def gather_reconsent(
    urls: Sequence[str], key: str, controller: str, purpose: str | None
) -> dict[str, Any]:
    """Every page of every worker: {controller, purpose, partitions, subjects}."""
    subjects: list[Any] = []
    path = f"/v1/controllers/{quote(controller, safe='')}/reconsent"

    async def ask(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
        cursor, first = None, dict[str, Any]()
        while True:
            params = {"limit": "1000", **({"purpose": purpose} if purpose else {})}
            if cursor:
                params["cursor"] = cursor
            page: dict[str, Any] = await _get(session, base + path, params)
            first = first or page
            subjects.extend(page["subjects"])
            cursor = page["next_cursor"]
            if cursor is None:
                return first

    partitions = await each_worker(urls, key, ask)
    subjects.sort(key=lambda subject: subject["subject_id"])
    return {
        "controller": controller,
        "purpose": purpose,
        "partitions": partitions,
        "subjects": subjects,
    }


async def gather_report(urls: Sequence[str], key: str) -> dict[str, Any]:
    """The workers' reports merged: {partitions, rows} with p50/p99 over all of them."""
    summaries: dict[tuple[str, str], Summary] = {}
    opened: dict[tuple[str, str], tuple[int, int]] = {}

    async def ask(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
        report: dict[str, Any] = await _get(session, f"{base}/v1/deadlines/report", {})
        for row in report["rows"]:
            place = (row["controller"], row["rule"])
            summaries[place] = summaries.get(place, Summary()).merge(Summary.from_json(row))
            was = opened.get(place, (0, 0))
            opened[place] = (was[0] + row["open"], was[1] + row["overdue"])
        return report

    partitions = await each_worker(urls, key, ask)
    rows = []
    for (controller, rule), summary in sorted(summaries.items()):
        open_, overdue = opened[(controller, rule)]
        rows.append(
            {
                "controller": controller,
                "rule": rule,
                **summary.to_json(),
                "open": open_,
                "overdue": overdue,
                "p50_seconds": summary.quantile(0.5),
                "p99_seconds": summary.quantile(0.99),
            }
        )
    return {"partitions": partitions, "rows": rows}


async def gather_open(
    urls: Sequence[str], key: str, controller: str | None, rule: str | None
) -> dict[str, Any]:
    clocks: list[Any] = []
    params = {"limit": "1000"}
    params |= {name: value for name, value in (("controller", controller), ("rule", rule)) if value}

    async def ask(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
        listed: dict[str, Any] = await _get(session, f"{base}/v1/deadlines", params)
        clocks.extend(listed["clocks"])
        return listed

    partitions = await each_worker(urls, key, ask)
    clocks.sort(key=lambda clock: (clock["deadline"], clock["event_id"]))
    return {"partitions": partitions, "clocks": clocks}


def duration(seconds: float | None) -> str:
    """A readable duration: 850ms, 42s, 3m12s, 5h4m, 2d3h (negative: overdue)."""
    if seconds is None:
        return "-"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f}ms"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h{minutes}m" if minutes else f"{sign}{hours}h"
    if minutes:
        return f"{sign}{minutes}m{secs}s" if secs else f"{sign}{minutes}m"
    return f"{sign}{secs}s"


def report_table(report: dict[str, Any]) -> str:
    head = (
        "controller",
        "rule",
        "closed",
        "met",
        "missed",
        "open",
        "overdue",
        "worst",
        "p50",
        "p99",
    )
    lines = [head]
    for row in report["rows"]:
        worst = f"{duration(row['worst_seconds'])} ({row['worst_fraction']:.0%})"
        lines.append(
            (
                row["controller"],
                row["rule"],
                str(row["count"]),
                str(row["met"]),
                str(row["missed"]),
                str(row["open"]),
                str(row["overdue"]),
                worst if row["count"] else "-",
                duration(row["p50_seconds"]),
                duration(row["p99_seconds"]),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    partitions = ",".join(map(str, report["partitions"])) or "none"
    return "\n".join([*text, f"partitions: {partitions}"])


def _print(data: dict[str, Any], as_json: bool, table: str) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(table)


def reconsent_main(argv: Sequence[str]) -> int:
    args = _reconsent_parser().parse_args(argv)
    try:
        key = api_key(args.key_file)
        found = asyncio.run(gather_reconsent(_urls(args.url), key, args.controller, args.purpose))
    except (Gathered, Failed) as exc:
        print(f"consent-streams reconsent: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, Failed) else 1
    lines = [
        f"{subject['subject_id']}  "
        + ", ".join(
            f"{p['purpose']}/{p['channel']} (notice {p['notice_version']}, since {p['since']})"
            for p in subject["pairs"]
        )
        for subject in found["subjects"]
    ]
    partitions = ",".join(map(str, found["partitions"])) or "none"
    summary = f"{len(found['subjects'])} subject(s) to ask again; partitions: {partitions}"
    _print(found, args.json, "\n".join([*lines, summary]))
    return 0


def deadlines_main(argv: Sequence[str]) -> int:
    args = _deadlines_parser().parse_args(argv)
    try:
        key = api_key(args.key_file)
        if args.command == "report":
            report = asyncio.run(gather_report(_urls(args.url), key))
            _print(report, args.json, report_table(report))
            return 0
        listed = asyncio.run(gather_open(_urls(args.url), key, args.controller, args.rule))
    except (Gathered, Failed) as exc:
        print(f"consent-streams deadlines: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, Failed) else 1
    lines = [
        f"{c['deadline']}  {duration(c['remaining_seconds']):>8}  {c['controller']}  {c['rule']}"
        f"  {c['type']}  {c['event_id']}  awaiting {c['awaiting']}"
        for c in listed["clocks"]
    ]
    partitions = ",".join(map(str, listed["partitions"])) or "none"
    _print(listed, args.json, "\n".join([*lines, f"{len(lines)} open; partitions: {partitions}"]))
    return 0
