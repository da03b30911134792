"""Every C{test-case-name} marker in the tree names a test module that exists."""

import importlib.util
import re

from tests.support import ROOT

MARKER = re.compile(r"test-case-name:\s*(\S+?)\s*-\*-")


def test_test_case_name_markers_name_existing_modules():
    missing = []
    for path in sorted(ROOT.glob("ctic/**/*.py")) + sorted(ROOT.glob("twisted/**/*.py")):
        for match in MARKER.finditer(path.read_text(encoding="utf-8")):
            for name in match.group(1).split(","):
                if importlib.util.find_spec(name) is None:
                    missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "test-case-name markers naming no module:\n" + "\n".join(missing)


def test_attrs_is_not_a_dependency():
    # Nothing imports attrs; a dependency nobody uses is one more thing to install.
    assert not re.search(r"^\s*attrs\b", (ROOT / "setup.cfg").read_text(), re.M)
