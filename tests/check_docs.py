#!/usr/bin/env python3
"""Keeps the documentation true: every ```nas block in the given docs compiles (or fails
exactly as the ```text block right after it shows), and every ```console block's
`$ nasc ...` lines print what the doc shows, and every ```python block runs without an
error (`python3 -c BLOCK`). Run by ctest (tests `docs_snippets`, `docs_python`).

Usage: tests/check_docs.py NASC_DIR REPO DOC.md...   (NASC_DIR holds the nasc binary)
With FILL=1 in the environment, console blocks are rewritten with the actual output
(for updating the docs after an intended change; review the diff).
A ```nas block preceded by `<!-- file: NAME -->` is saved as NAME (so others can import it).
"""
import os, re, shutil, subprocess, sys, tempfile

NASC_DIR = os.path.abspath(sys.argv[1])  # folder holding the nasc binary
REPO = os.path.abspath(sys.argv[2])
docs = sys.argv[3:]
fails = 0

def run(cmd, cwd):
    env = dict(os.environ, PATH=NASC_DIR + ":" + os.environ["PATH"])
    p = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout

for doc in docs:
    work = tempfile.mkdtemp(prefix="docs-")
    shutil.copytree(os.path.join(REPO, "examples"), os.path.join(work, "examples"))
    text = open(doc).read()
    blocks = []  # (lang, body, marker, line)
    marker = None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"<!-- file: (\S+) -->", lines[i])
        if m:
            marker = m.group(1)
        fm = re.match(r"^```(\w*)\s*$", lines[i])
        if fm:
            lang = fm.group(1)
            j = i + 1
            body = []
            while not lines[j].startswith("```"):
                body.append(lines[j]); j += 1
            blocks.append((lang, "\n".join(body) + "\n", marker, i + 1, i, j))
            marker = None
            i = j + 1
            continue
        if lines[i].strip() and not m:
            marker = None
        i += 1
    n = 0
    repl = {}
    for k, (lang, body, marker, line, b0, b1) in enumerate(blocks):
        where = f"{doc}:{line}"
        if lang in ("nas", "json") and marker:
            path = os.path.join(work, marker)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").write(body)
        if lang == "nas":
            n += 1
            name = marker or f"snippet_{n}.nas"
            if not marker:
                open(os.path.join(work, name), "w").write(body)
            if not re.search(r"^\s*network\s+\w+", body, re.M):
                continue  # a library file, checked through its importers
            nxt = blocks[k + 1] if k + 1 < len(blocks) else None
            expect_err = nxt and nxt[0] == "text" and nxt[1].startswith(name + ":") and ": error:" in nxt[1].split("\n")[0]
            rc, out = run(f"nasc check {name}", work)
            if expect_err:
                repl[nxt[4]] = (nxt[5], out.rstrip().split("\n"))
                if rc != 1 or out.rstrip() != nxt[1].rstrip():
                    fails += 1
                    print(f"{where}: expected this error output:\n{nxt[1]}got (rc={rc}):\n{out}")
            elif rc != 0:
                fails += 1
                print(f"{where}: {name} does not compile:\n{out}")
        elif lang == "console":
            cmds = []
            for l in body.rstrip("\n").split("\n"):
                if l.startswith("$ "):
                    cmds.append([l[2:], []])
                elif cmds:
                    cmds[-1][1].append(l)
            filled = []
            for cmd, exp in cmds:
                rc, out = run(cmd, work)
                filled += ["$ " + cmd] + (out.rstrip().split("\n") if out.strip() else [])
                want = "\n".join(exp).rstrip()
                if out.rstrip() != want:
                    fails += 1
                    print(f"{where}: `{cmd}` printed (rc={rc}):\n{out}--- the doc shows:\n{want}\n")
        elif lang == "python":
            # Run as `python3 -c BLOCK` by the Python running this script, in the work
            # folder (examples/ beside it); it must exit 0. PYTHONPATH finds the module.
            path = os.environ.get("PYTHONPATH", "")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                os.path.abspath(p) for p in path.split(os.pathsep) if p))
            p = subprocess.run([sys.executable, "-c", body], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if p.returncode != 0:
                fails += 1
                print(f"{where}: the python block failed (rc={p.returncode}):\n{p.stdout}")
        if lang == "console":
            repl[b0] = (b1, filled)
    if os.environ.get("FILL"):
        out_lines = []
        i = 0
        while i < len(lines):
            if i in repl:
                end, body = repl[i]
                out_lines.append(lines[i]); out_lines += body; out_lines.append(lines[end])
                i = end + 1
                continue
            out_lines.append(lines[i]); i += 1
        open(doc, "w").write("\n".join(out_lines))
    print(f"{doc}: {n} nas snippets, work dir {work}")
print("FAILURES:", fails)
sys.exit(1 if fails else 0)
