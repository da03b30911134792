"""The README stays true: the option reference is the schemas', the test command is CI's."""

import re
import subprocess
import sys


from tests.support import ROOT


def test_options_table_matches_the_schemas():
    table = subprocess.run(
        [sys.executable, "-m", "ctic.config", "--table"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    reference = (ROOT / "docs" / "options.rst").read_text()
    start = reference.index(".. BEGIN OPTIONS TABLE\n") + len(".. BEGIN OPTIONS TABLE\n")
    end = reference.index(".. END OPTIONS TABLE")
    assert reference[start:end].strip() == table.strip(), "regenerate docs/options.rst with: python -m ctic.config --table"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.rst").read_text()
    commands = re.findall(r"^    (pip install .*)$", readme, re.M)
    assert len(commands) == 2, commands
    test_command = [c for c in commands if c.endswith("pytest")]
    assert len(test_command) == 1
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command[0] in ci.splitlines()


# Research notes live outside the repository; tracked files cite the docs/
# that restate them.  The patterns are built from pieces so that this file
# does not match itself.
_SHARED = "sha" + "red"
_OUTSIDE_NOTES = re.compile("|".join((
    re.escape(_SHARED + "/" + "reference"),
    re.escape(_SHARED + "/" + "data"),
    re.escape(".." + "/" + _SHARED),
    "refer" + r"ence/[a-z0-9-]+\." + "md",
)))
# .ci/run checks that a clean clone has no such directory next to it.
_ALLOWED_MENTIONS = {(".ci/run", "test ! -e .." + "/" + _SHARED)}


def test_no_tracked_file_points_outside_the_repository():
    files = subprocess.run(
        ["git", "ls-files", "-z"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split("\0")
    hits = []
    for name in files:
        if not name or name.startswith("tests/data/"):
            continue
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if _OUTSIDE_NOTES.search(line) and (name, line.strip()) not in _ALLOWED_MENTIONS:
                hits.append(f"{name}:{number}: {line.strip()}")
    assert not hits, "cite docs/ instead:\n" + "\n".join(hits)
