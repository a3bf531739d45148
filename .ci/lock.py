"""Regenerate the pins: every requirement in `requirements.txt` (pinned `name==version`, or a bare `name` just
added) is pinned to the version installed in the running environment, and `environment.yml`'s pip section is
rewritten from it (tests/test_env_sync.py checks that the two agree). Comments and the header stay.

    .venv/bin/python .ci/lock.py [ROOT]        # `make lock`
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==\s*\S+)?\s*(#.*)?$")


def lock_requirements(text: str) -> tuple[str, list[str]]:
    """`text` with every requirement pinned to its installed version, and the pins in order."""
    out, pins = [], []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")):
            out.append(line)
            continue
        match = NAME.match(stripped)
        if match is None:
            raise SystemExit(f"requirements.txt:{n}: cannot read {stripped!r} (expected name==version)")
        name, extras = match.group(1), match.group(2) or ""
        try:
            # without a local label (torch's `+cpu`): `==2.13.0` matches every build of that release
            pin = f"{name}{extras}=={version(name).split('+')[0]}"
        except PackageNotFoundError:
            raise SystemExit(f"requirements.txt:{n}: {name} is not installed in {sys.prefix}") from None
        out.append(pin)
        pins.append(pin)
    return "\n".join(out) + "\n", pins


def lock_environment(text: str, pins: list[str]) -> str:
    """`environment.yml` with its pip section replaced by `pins`."""
    head, sep, _ = text.partition("  - pip:\n")
    if not sep:
        raise SystemExit("environment.yml: no `  - pip:` section to write the pins into")
    return head + sep + "".join(f"      - {p}\n" for p in pins)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    req, env = root / "requirements.txt", root / "environment.yml"
    text, pins = lock_requirements(req.read_text())
    req.write_text(text)
    env.write_text(lock_environment(env.read_text(), pins))
    print(f"{len(pins)} pins written to {req} and {env}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
