"""Build hook: the console's screenshots live with the tests that take them
(``tests/screenshots``); the site serves them as ``screenshots/``."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

SHOTS = Path(__file__).resolve().parent.parent / "tests" / "screenshots"


def on_files(files, config):
    for png in sorted(SHOTS.glob("*.png")):
        files.append(File.generated(config, f"screenshots/{png.name}", abs_src_path=str(png)))
    return files
