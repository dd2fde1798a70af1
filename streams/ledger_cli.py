"""``consent-streams ledger verify``: check the ledger's hash chains as the cluster holds them.

Reads the worker's ledger and subject changelog topics (the latest record per key, as
compaction keeps them), checks each subject's chain against the head stored with its state,
and reports what it finds. It never writes: a tampered ledger is reported, not repaired.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.core.ledger import Finding, Problem, verify_stored
from streams.core.state import head_of
from streams.pipeline.ledger_store import LEDGER_TABLE, split_key
from streams.settings import Settings
from streams.topology import SUBJECTS_TABLE, partition_of

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 75
#: Seconds between progress lines on stderr.
PROGRESS_EVERY = 2.0


def changelog(app_id: str, table: str) -> str:
    """A table's changelog topic as the worker (Faust) names it."""
    return f"{app_id}-{table}-changelog"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-streams ledger",
        description="Check the consent ledger kept by the workers.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        help="check the hash chains of one subject, one partition or all",
        description=(
            "Read the ledger and subject changelog topics from the cluster (the latest record "
            "per key, as compaction keeps them) and check every subject's hash chain against "
            "the chain head stored with its state: altered, missing, duplicated, reordered or "
            "foreign entries, and chains that do not end at the head. Nothing is written. "
            "Exit status: 0 clean, 1 problems found, 2 usage error, 75 broker unreachable."
        ),
    )
    where = verify.add_mutually_exclusive_group()
    where.add_argument(
        "--subject", metavar="CONTROLLER/SUBJECT_ID", help="one subject (reads its partition)"
    )
    where.add_argument("--partition", type=int, metavar="N", help="every subject of partition N")
    verify.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="the cluster (default: KAFKA_BOOTSTRAP_SERVERS)",
    )
    verify.add_argument(
        "--app-id",
        default=os.environ.get("CONSENT_APP_ID") or Settings.model_fields["app_id"].default,
        help="the workers' CONSENT_APP_ID: prefix of their changelog topics "
        "(default: CONSENT_APP_ID, else %(default)s)",
    )
    verify.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up on an unreachable broker after this long (default: 30)",
    )
    verify.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


@dataclass
class Report:
    subjects: int = 0
    entries: int = 0
    findings: list[tuple[str, Finding]] = field(default_factory=list)

    @property
    def by_kind(self) -> Counter[Problem]:
        return Counter(finding.problem for _, finding in self.findings)


class Progress:
    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self._last = time.monotonic()

    def __call__(self, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.out is not None and (force or now - self._last >= PROGRESS_EVERY):
            self._last = now
            print(message, file=self.out, flush=True)


async def read_latest(
    consumer: AIOKafkaConsumer, topic: str, partitions: Sequence[int], progress: Progress
) -> dict[bytes, bytes]:
    """The latest value of every key in ``partitions`` of ``topic`` (tombstones delete)."""
    tps = [TopicPartition(topic, p) for p in partitions]
    if not tps:
        return {}
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    latest: dict[bytes, bytes] = {}
    read = 0
    left = {tp for tp in tps if ends[tp] > 0}
    while left:
        fetched = await consumer.getmany(*left, timeout_ms=500, max_records=10_000)
        for records in fetched.values():
            for record in records:
                read += 1
                if record.key is None:
                    continue
                if record.value is None:
                    latest.pop(record.key, None)
                else:
                    latest[record.key] = record.value
        for tp in list(left):
            if await consumer.position(tp) >= ends[tp]:
                left.discard(tp)
        progress(f"{topic}: {read} records read")
    return latest


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> int:
    """The partition count of ``topic`` (metadata of a topic just listed may lag a moment)."""
    deadline = time.monotonic() + timeout
    while not (found := consumer.partitions_for_topic(topic)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        await consumer.topics()
    return len(found or ())


def verify(
    entries: dict[bytes, bytes], states: dict[bytes, bytes], only: bytes | None, progress: Progress
) -> Report:
    report = Report()
    chains: dict[bytes, list[tuple[int, bytes]]] = defaultdict(list)
    for stored_key, value in entries.items():
        split = split_key(stored_key)
        if split is None:
            finding = Finding(0, Problem.CORRUPT, f"not a ledger entry key: {stored_key!r}")
            report.findings.append(("?", finding))
            continue
        chains[split[0]].append((split[1], value))
    subjects = set(chains) | {k for k, v in states.items() if head_of(v).sequence}
    if only is not None:
        subjects &= {only}
    for number, key in enumerate(sorted(subjects), 1):
        chain = sorted(chains.get(key, ()))
        controller, _, subject_id = key.decode(errors="replace").partition("/")
        head = head_of(states.get(key))
        found = verify_stored([value for _, value in chain], head, (controller, subject_id))
        report.subjects += 1
        report.entries += len(chain)
        report.findings += [(f"{controller}/{subject_id}", f) for f in found]
        progress(f"verified {number}/{len(subjects)} subjects")
    return report


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    progress = Progress(None if args.quiet else err)
    ledger_topic = changelog(args.app_id, LEDGER_TABLE)
    state_topic = changelog(args.app_id, SUBJECTS_TABLE)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        request_timeout_ms=max(int(args.timeout * 1000), 1000),
        isolation_level="read_committed",
    )
    try:
        await asyncio.wait_for(consumer.start(), args.timeout)
    except (KafkaError, OSError, TimeoutError) as exc:
        print(f"consent-streams ledger: cannot reach {args.bootstrap}: {exc}", file=err)
        return EXIT_UNREACHABLE
    try:
        known = await consumer.topics()
        if ledger_topic not in known:
            print(f"consent-streams ledger: no topic {ledger_topic} (is --app-id right?)", file=err)
            return EXIT_USAGE
        count = len(consumer.partitions_for_topic(ledger_topic) or ())
        only: bytes | None = None
        if args.subject is not None:
            only = args.subject.encode()
            partitions = [partition_of(only.partition(b"/")[2], count)]
        elif args.partition is not None:
            if not 0 <= args.partition < count:
                print(f"consent-streams ledger: --partition must be 0..{count - 1}", file=err)
                return EXIT_USAGE
            partitions = [args.partition]
        else:
            partitions = list(range(count))
        # States first: entries are acknowledged before the states that carry their heads, so
        # entries read afterwards include every entry a head read here refers to.
        states = (
            await read_latest(consumer, state_topic, partitions, progress)
            if state_topic in known
            else {}
        )
        entries = await read_latest(consumer, ledger_topic, partitions, progress)
    finally:
        await consumer.stop()
    report = verify(entries, states, only, progress)
    for subject, finding in report.findings:
        print(
            f"{subject}  #{finding.sequence}  {finding.problem.value}: {finding.detail}", file=out
        )
    kinds = ", ".join(f"{kind.value} {n}" for kind, n in sorted(report.by_kind.items()))
    print(
        f"partitions {','.join(map(str, partitions))}: {report.subjects} subjects, "
        f"{report.entries} entries, {len(report.findings)} findings"
        + (f" ({kinds})" if kinds else ""),
        file=out,
    )
    return EXIT_FOUND if report.findings else EXIT_CLEAN


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # exits 2 on a usage error
    if not args.bootstrap:
        parser.error("--bootstrap or KAFKA_BOOTSTRAP_SERVERS is required")
    if args.subject is not None and "/" not in args.subject:
        parser.error("--subject is CONTROLLER/SUBJECT_ID")
    return asyncio.run(_run(args, out, err))


if __name__ == "__main__":
    sys.exit(main())
