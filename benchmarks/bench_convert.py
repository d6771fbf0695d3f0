"""Throughput of the session-record converter, in records per second.

Every line of every session sample in ``tests/samples`` (the real CLI's records,
attachments and request logs included) is fed, as bytes, to three stages:

* ``json.loads`` alone, the floor any parser pays;
* ``parse_record``: JSON + cattrs structuring into the record models + the unknown-key
  check;
* ``normalize``: all of the above + building the events and signals.

Each stage runs over all the records ``--rounds`` times per repeat; the best of
``--repeats`` repeats is reported (the least disturbed by the machine).

Run: ``python benchmarks/bench_convert.py [--rounds N] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from claude_trio import normalize
from claude_trio._convert import parse_record

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "samples"


def load_records() -> list[bytes]:
    if not SAMPLES.is_dir():
        raise SystemExit(f"the CLI samples are missing: {SAMPLES} does not exist")
    paths = [
        *sorted(SAMPLES.glob("session_*.jsonl")),
        SAMPLES / "resume_minimal_handwritten_input.jsonl",
    ]
    return [line for path in paths for line in path.read_bytes().splitlines(keepends=True)]


def best_rate(
    stage: Callable[[bytes], object], records: list[bytes], rounds: int, repeats: int
) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            for record in records:
                stage(record)
        best = min(best, time.perf_counter() - start)
    return len(records) * rounds / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=50, help="passes over the samples per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the best one counts")
    parser.add_argument("--quick", action="store_true", help="5 rounds x 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeats = 5, 2

    records = load_records()
    size = sum(map(len, records))
    print(f"{len(records)} records ({size / 1024:.0f} KiB)", end=", ")
    print(f"{args.rounds} rounds x {args.repeats} repeats, best repeat:")
    stages: dict[str, Callable[[bytes], object]] = {
        "json.loads": json.loads,
        "parse_record": parse_record,
        "normalize": normalize,
    }
    for name, stage in stages.items():
        rate = best_rate(stage, records, args.rounds, args.repeats)
        print(f"{name:>13}: {rate:10,.0f} records/s  ({1e6 / rate:6.1f} µs/record)")


if __name__ == "__main__":
    main()
