#!/usr/bin/env python3
"""Runs one FileCheck test file: its `// RUN:` lines, each a shell pipeline, with
  %nasc       the nasc binary           %FileCheck  LLVM's FileCheck
  %s          this file (absolute)      %S          this file's folder
  %t          a scratch path for this test
and `expect_exit N CMD...`, a shell function that runs CMD and fails unless it exits N
(for the error cases: `expect_exit 1 %nasc opt %s 2>&1 | %FileCheck %s`). Every RUN line
runs under `set -o pipefail`, so a failing nasc fails the test even when FileCheck would
pass. Run by ctest (tests/CMakeLists.txt, label `filecheck`).

Usage: run_filecheck.py NASC FILECHECK TEST_FILE
"""
import os, re, subprocess, sys, tempfile

nasc, filecheck, test = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3])
runs = []
for line in open(test, encoding="utf-8"):
    m = re.match(r"\s*//\s*RUN:\s*(.*)$", line)
    if m:
        # A RUN line ending in `\` continues on the next RUN line, as in lit.
        if runs and runs[-1].endswith("\\"):
            runs[-1] = runs[-1][:-1] + " " + m.group(1).strip()
        else:
            runs.append(m.group(1).strip())
if not runs:
    print(f"{test}: no RUN: line")
    sys.exit(1)

scratch = tempfile.mkdtemp(prefix="nasc-filecheck-")
prelude = ('expect_exit() { want=$1; shift; "$@"; got=$?; if [ "$got" != "$want" ]; then '
           'echo "expect_exit: expected exit status $want, got $got" >&2; return 1; fi; }\n'
           "set -o pipefail\n")
failed = False
for i, run in enumerate(runs):
    cmd = (run.replace("%nasc", nasc).replace("%FileCheck", filecheck)
           .replace("%S", os.path.dirname(test)).replace("%s", test)
           .replace("%t", os.path.join(scratch, f"t{i}")))
    p = subprocess.run(["bash", "-c", prelude + cmd], cwd=scratch, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        failed = True
        print(f"{test}: RUN line {i + 1} failed (exit {p.returncode}):\n  {cmd}\n{p.stdout}")
sys.exit(1 if failed else 0)
