"""A team's template at its largest (100,000 characters, ``bot.gitlab.targets.MAX_TEMPLATE_CHARS``), in the
shapes that cost most: how long finding its quick actions and neutralising them takes, and the check that the
result may go before the bot's part (``preamble_problem``). Both run once per child opened from the template.

    .venv/bin/python bench/bench_template_quickactions.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

from bot.gitlab.targets import MAX_TEMPLATE_CHARS
from bot.text.hazards import preamble_problem
from bot.text.quickactions import neutralise

SHAPES = {
    "HTML lines in one paragraph": "x\n" + "<a>\n" * 30_000,
    "unclosed backticks": "x\n" + "`a\n" * 40_000,
    "quick action lines": "/label ~a\n" * 12_000,
    "plain prose": "Some words here and there.\n" * 4_000,
    "list items with lazy lines": "- item\n/close\n" * 8_000,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for name, text in SHAPES.items():
        text = text[:MAX_TEMPLATE_CHARS]
        best_n = best_p = float("inf")
        for _ in range(args.rounds):
            start = time.perf_counter()
            out, found = neutralise(text)
            best_n = min(best_n, time.perf_counter() - start)
            start = time.perf_counter()
            preamble_problem(out)
            best_p = min(best_p, time.perf_counter() - start)
        print(f"{name:28s} {len(text):7,d} chars: neutralise {best_n * 1000:7.1f} ms, "
              f"preamble_problem {best_p * 1000:7.1f} ms, {len(found):,} quick actions")


if __name__ == "__main__":
    main()
