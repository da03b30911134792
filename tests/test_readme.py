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
