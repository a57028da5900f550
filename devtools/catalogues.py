"""Compile zfsync's message catalogues (.po) into the .mo files gettext reads, or check they are current.

Run as ``scripts/i18n`` after editing a .po file; ``--check`` exits 1 when a .mo file is stale.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from zfsync import i18n


def compiled(po: Path) -> bytes:
    with po.open("rb") as source:
        catalog = read_po(source, locale=po.parents[1].name, domain=i18n.DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def catalogues() -> list[Path]:
    return [i18n.HERE / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po" for language in i18n.LANGUAGES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say whether the .mo files are current")
    args = parser.parse_args(argv)
    stale = []
    for po in catalogues():
        mo = po.with_suffix(".mo")
        data = compiled(po)
        if mo.exists() and mo.read_bytes() == data:
            continue
        if args.check:
            stale.append(mo)
        else:
            mo.write_bytes(data)
            print(f"wrote {mo}")
    for mo in stale:
        print(f"{mo} does not match its .po: run scripts/i18n", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
