"""Checks that each `#if DEBUG` / `#else` pair of state declarations agrees.

Handlers declare their event-loop state twice: plainly for debug builds (the tests,
with Swift's dynamic exclusivity checks) and with `@exclusivity(unchecked)` for
release builds. The tests build only the first list, so a declaration added to one
list alone would break only the release build; this catches it.

    python3 scripts/lib/check_exclusivity_lists.py Sources
"""

import pathlib
import sys

MARK = "@exclusivity(unchecked) "


def blocks(lines):
    """(line number, debug lines, release lines) for each #if DEBUG/#else/#endif whose
    #else branch uses the mark."""
    index = 0
    while index < len(lines):
        if lines[index].strip() == "#if DEBUG":
            start = index
            debug, release = [], []
            branch = debug
            index += 1
            while index < len(lines) and lines[index].strip() != "#endif":
                if lines[index].strip() == "#else":
                    branch = release
                else:
                    branch.append(lines[index].strip())
                index += 1
            if any(MARK in line for line in release):
                yield start + 1, debug, release
        index += 1


def main():
    failures = 0
    checked = 0
    for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.swift")):
        lines = path.read_text().splitlines()
        for line, debug, release in blocks(lines):
            checked += 1
            stripped = [entry.replace(MARK, "", 1) for entry in release]
            if stripped != debug or not all(entry.startswith(MARK) for entry in release if entry):
                failures += 1
                print("%s:%d: the #if DEBUG and #else declarations differ (each #else line is its #if DEBUG "
                      "line with %r in front)" % (path, line, MARK.strip()))
    if failures:
        sys.exit(1)
    print("%d pair(s) of state declarations agree" % checked)


if __name__ == "__main__":
    main()
