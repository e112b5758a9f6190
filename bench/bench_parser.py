"""Parser benchmark: dsmr_backend.parser vs dsmr-parser 1.11.2 on the V5 fixture, CRC checks on.

Speed (default): both parsers run the same telegram in alternating rounds in this one process;
each round is timed in process CPU time (time.process_time: other load on the machine does not
count) and each side's best round counts; the ratio is printed.

Memory (--memory N): N parses with each parser, RSS (VmRSS from /proc/self/status) sampled before,
at every tenth of the run, and after; ours must not grow. Ours runs first, so dsmr-parser's
growth cannot inflate our figure.

    .venv/bin/python bench/bench_parser.py                  # speed, about 20 s
    .venv/bin/python bench/bench_parser.py --line-by-line   # ours without shapes
    .venv/bin/python bench/bench_parser.py --memory 1000000 # memory: ~1 min ours, ~25 min dsmr-parser
    .venv/bin/python bench/bench_parser.py --memory 1000000 --only dsmr_backend
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser

from dsmr_backend import parser
from dsmr_backend.parser import parse

FIXTURE = Path("/work/shared/telegrams/real/v5.txt")
TARGET_RATIO = 20.0


def load_fixture(path: Path) -> str:
    """The telegram exactly as the meter sent it (latin-1, CRLF kept)."""
    return path.read_bytes().decode("latin-1")


def make_parsers(telegram: str) -> dict[str, Callable[[], object]]:
    """Both parsers, each as a no-argument call parsing the fixture with CRC checking on."""
    reference = TelegramParser(telegram_specifications.V5, apply_checksum_validation=True)
    return {
        "dsmr_backend": lambda: parse(telegram, check_crc=True),
        "dsmr_parser": lambda: reference.parse(telegram),
    }


def time_round(run: Callable[[], object], count: int) -> float:
    """CPU seconds for ``count`` parses."""
    start = time.process_time()
    for _ in range(count):
        run()
    return time.process_time() - start


def rss_kib() -> int:
    """Resident set size of this process in KiB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def speed(telegram: str, ours_per_round: int, rounds: int) -> float:
    """Alternate rounds of both parsers; print telegrams/s (best round) and return the ratio."""
    parsers = make_parsers(telegram)
    # dsmr-parser is about 20x slower: fewer parses per round keeps the rounds equally long.
    counts = {"dsmr_backend": ours_per_round, "dsmr_parser": max(ours_per_round // 20, 1)}
    best = dict.fromkeys(parsers, 0.0)
    for run in parsers.values():
        run()  # warm up (imports, caches)
    for _ in range(rounds):
        for name, run in parsers.items():
            rate = counts[name] / time_round(run, counts[name])
            best[name] = max(best[name], rate)
    ratio = best["dsmr_backend"] / best["dsmr_parser"]
    for name, rate in best.items():
        print(f"{name:13s} {rate:12,.0f} telegrams/s  ({1e6 / rate:8.1f} us/telegram)")
    verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(f"ratio         {ratio:12.1f} x   (target >= {TARGET_RATIO:g}x: {verdict})")
    return ratio


def memory(telegram: str, count: int, only: str | None) -> dict[str, int]:
    """RSS growth (KiB) over ``count`` parses for each parser, with samples along the way."""
    growth: dict[str, int] = {}
    step = max(count // 10, 1)
    for name, run in make_parsers(telegram).items():
        if only and name != only:
            continue
        for _ in range(1000):  # warm up: first-use allocations are not growth
            run()
        gc.collect()
        before = rss_kib()
        samples = []
        for done in range(1, count + 1):
            run()
            if done % step == 0:
                samples.append(rss_kib())
        gc.collect()
        after = rss_kib()
        growth[name] = after - before
        shown = " ".join(f"{s / 1024:.1f}" for s in samples)
        print(f"{name:13s} RSS before {before / 1024:7.1f} MiB, after {after / 1024:7.1f} MiB,")
        print(f"{'':13s} growth {growth[name]:+8d} KiB over {count:,} parses; samples MiB: {shown}")
    return growth


def main(argv: list[str] | None = None) -> int:
    """Run the speed benchmark, or the memory one with --memory N."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--fixture", type=Path, default=FIXTURE)
    args.add_argument("--per-round", type=int, default=20_000, help="our parses per round")
    args.add_argument("--rounds", type=int, default=5)
    args.add_argument("--memory", type=int, metavar="N", help="measure RSS over N parses each")
    args.add_argument("--only", choices=["dsmr_backend", "dsmr_parser"], help="memory: one side")
    args.add_argument(
        "--line-by-line", action="store_true", help="ours without shapes (a meter's first telegram)"
    )
    options = args.parse_args(argv)
    telegram = load_fixture(options.fixture)
    if options.line_by_line:
        parser._learn_shape = lambda body, lines: None  # every telegram read line by line
    python = sys.version.split()[0]
    print(f"fixture {options.fixture} ({len(telegram)} chars), CRC checking on, Python {python}")
    if options.memory:
        growth = memory(telegram, options.memory, options.only)
        # Ours keeps only bounded caches: anything above 1 MiB would be a leak.
        return 0 if growth.get("dsmr_backend", 0) <= 1024 else 1
    return 0 if speed(telegram, options.per_round, options.rounds) >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
