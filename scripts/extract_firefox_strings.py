"""Write a language pack's shipped Firefox sentences from a Firefox language pack (.xpi or the Debian .deb).

The demo corpus must be the same on every machine, so the sentences ship with the pack
(src/morphcpt/languages/<code>/firefox_strings.txt) instead of being read from whatever Firefox version is
installed. To refresh them:

    apt-get download firefox-esr-l10n-tl && dpkg-deb -x firefox-esr-l10n-tl_*.deb deb
    python scripts/extract_firefox_strings.py deb/usr/lib/firefox-esr/browser/extensions/langpack-tl@*.xpi \
        --source "Debian firefox-esr-l10n-tl VERSION" --out src/morphcpt/languages/tl/firefox_strings.txt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from morphcpt.data.markers import atomic_output
from morphcpt.languages.tl.corpus import strings_from_langpack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xpi", type=Path)
    parser.add_argument("--source", required=True, help="package name and version, recorded in the header")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    strings = strings_from_langpack(args.xpi)
    header = [
        f"# Sentences from {args.source} ({args.xpi.name}), extracted by scripts/extract_firefox_strings.py.",
        "# Mozilla Firefox localisation strings, MPL-2.0 (https://mozilla.org/MPL/2.0/); source:",
        "# https://hg.mozilla.org/l10n-central/ . One sentence per line; lines starting with # are comments.",
    ]
    with atomic_output(args.out) as tmp:
        tmp.write_text("\n".join([*header, *strings]) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(strings)} sentences")


if __name__ == "__main__":
    main()
