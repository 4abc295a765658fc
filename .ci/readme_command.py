"""Print one of the README's two set-up commands (``demo`` or ``test``), exactly as written there.

.ci/run runs them through this, so CI checks the commands a user copies and they cannot drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

MARKERS = {"demo": "**Install and run the demo**", "test": "**Install and run the tests**"}


def readme_command(which: str, readme: Path) -> str:
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(MARKERS[which]))
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    return lines[fence + 1].strip()


if __name__ == "__main__":
    print(readme_command(sys.argv[1], Path(__file__).resolve().parents[1] / "README.md"))
