"""The command line every peer shares, and the lines a peer prints for the harness."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

#: Destination name used for rejected records, next to the suppression destinations.
DEADLETTER = "deadletter"
#: Prefix of the lines a peer prints for the harness.
MARK = "BENCH "


@dataclass(frozen=True, slots=True)
class PeerArgs:
    bootstrap: str
    prefix: str
    group: str
    state_dir: str
    fetch_wait_ms: int
    partitions: int

    @property
    def events_topic(self) -> str:
        return f"{self.prefix}consent.events"

    def suppressions_topic(self, destination: str) -> str:
        return f"{self.prefix}consent.suppressions.{destination}"

    @property
    def deadletter_topic(self) -> str:
        return f"{self.prefix}consent.deadletter"

    def topic_for(self, destination: str) -> str:
        if destination == DEADLETTER:
            return self.deadletter_topic
        return self.suppressions_topic(destination)


def parse_args(argv: list[str] | None, description: str) -> PeerArgs:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--prefix", default="", help="topic name prefix")
    parser.add_argument("--group", required=True, help="consumer group / application id")
    parser.add_argument("--state-dir", default=".bench-state", help="local state directory")
    parser.add_argument("--fetch-wait-ms", type=int, default=500, help="consumer fetch wait")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of created topics")
    ns = parser.parse_args(argv)
    return PeerArgs(
        ns.bootstrap, ns.prefix, ns.group, ns.state_dir, ns.fetch_wait_ms, ns.partitions
    )


class FirstConsume:
    """Prints the wall-clock time of the first record a peer consumes, once."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self) -> None:
        if not self.seen:
            self.seen = True
            mark(f"first_consume={time.time():.6f}")


def mark(text: str) -> None:
    print(MARK + text, file=sys.stdout, flush=True)
