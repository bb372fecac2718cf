#!/usr/bin/env python3
"""report.html as a person sees it: a small `nasc search --retrain` run's report, opened in
headless Chromium.

- No console message at all: the report has no script of its own, so anything on the
  console (a JavaScript error, a resource that failed to load) is a defect. That the
  console is really watched is checked first, on a control page that logs an error.
- The DOM the browser builds holds every section and every inline <svg> of the file (an
  unbalanced tag or bad SVG markup would lose some), no XML parser error, and the test
  accuracy of result.json.
- Laid out, the curves, the heatmap cells and the architecture drawing's nodes take up
  room on the page (measured by a harness page that frames the report).
- A screenshot comes out, is kept as an artifact (ARTIFACT_DIR/report.png) and is not
  blank.

Without Chromium (Debian's `chromium`, installed by scripts/setup.sh --tests) the test reports
itself skipped (exit 77) and says why.

    report_in_browser.py NASC_BINARY [ARTIFACT_DIR]
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

SKIP = 77

SPACE = """
network widenable(x: tensor[4, 12, 12], width: int = 4) {
  let h = choice "op" { zero: zero(x), mute: mul(x, 0.0), conv: conv(x, 4, kernel=3, pad=1) };
  h = relu(conv(relu(h), width, kernel=1));
  return linear(flatten(max_pool(h, 4)), 4);
}
"""

CONFIG = {
    "epochs": 2, "seed": 3, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 512, "synthetic_classes": 4,
             "batch_size": 32},
    "retrain": {"epochs": 2, "network": {"width": 6}, "data": {"train_portion": 0.75}},
}

SECTIONS = ["Search and retrain", "Search", "Training curves", "Retrain curves",
            "Architecture probabilities", "Final architecture"]


def browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def headless(chrome, *args):
    # --no-sandbox: the tests may run as root (CI, containers), where the sandbox refuses.
    # --enable-logging=stderr: every console message goes to stderr as "INFO:CONSOLE".
    # --allow-file-access-from-files: the harness page may read the framed report's DOM.
    cmd = [chrome, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
           "--v=0", "--allow-file-access-from-files", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def console_messages(run):
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


CONTROL_PAGE = """<!doctype html><html><body><p>control</p>
<script>console.error("nasc control message"); not_defined();</script></body></html>"""

# Frames the report at the screenshot's size and measures what was drawn; the result is
# written into its own DOM as JSON, for --dump-dom.
HARNESS_PAGE = """<!doctype html><html><body style="margin:0">
<iframe id="report" src="report.html" style="width:1280px;height:2000px;border:0"></iframe>
<script>
document.getElementById("report").onload = () => {
  const doc = document.getElementById("report").contentDocument;
  const shown = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  // A curve of constant value is a horizontal line: no height, but drawn.
  const stroked = e => { const r = e.getBoundingClientRect(); return r.width + r.height > 0; };
  const count = (selector, test) => [...doc.querySelectorAll(selector)].filter(test).length;
  const painted = e => shown(e) && getComputedStyle(e).backgroundColor !== "rgba(0, 0, 0, 0)";
  const result = {
    curves: count("svg.plot polyline", stroked),
    heatmap_cells: count(".hm td.c", painted),
    drawing_nodes: count(".drawing svg g.node", shown),
  };
  const out = document.createElement("pre");
  out.id = "drawn";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
};
</script></body></html>"""


def drawn(chrome, run_dir):
    """What the browser drew, measured in the framed report: {curves, heatmap_cells,
    drawing_nodes} (elements with a non-empty box), or an error string."""
    harness = os.path.join(run_dir, "harness.html")
    with open(harness, "w") as f:
        f.write(HARNESS_PAGE)
    r = headless(chrome, "--dump-dom", "file://" + harness)
    found = re.search(r'<pre id="drawn">(.*?)</pre>', r.stdout)
    if not found:
        return "the harness page measured nothing (exit %d): %s" % (r.returncode, r.stderr[-500:])
    return json.loads(found.group(1).replace("&quot;", '"'))


def main():
    nasc = sys.argv[1]
    chrome = browser()
    if chrome is None:
        print("SKIP: no Chromium (Debian package chromium) to open report.html in")
        return SKIP
    artifacts = sys.argv[2] if len(sys.argv) > 2 else None
    failures = []
    with tempfile.TemporaryDirectory(prefix="nasc_report_") as tmp:
        control = os.path.join(tmp, "control.html")
        with open(control, "w") as f:
            f.write(CONTROL_PAGE)
        if len(console_messages(headless(chrome, "--dump-dom", "file://" + control))) < 2:
            print("FAIL: Chromium's console messages are not seen (the control page logs two)")
            return 1
        space = os.path.join(tmp, "space.nas")
        config = os.path.join(tmp, "cfg.json")
        run = os.path.join(tmp, "run")
        with open(space, "w") as f:
            f.write(SPACE)
        with open(config, "w") as f:
            json.dump(CONFIG, f)
        r = subprocess.run([nasc, "search", space, "-c", config, "--retrain", "-o", run],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            print("FAIL: nasc search exited", r.returncode)
            return 1
        report = os.path.join(run, "report.html")
        with open(report, encoding="utf-8") as f:
            source = f.read()
        with open(os.path.join(run, "result.json")) as f:
            result = json.load(f)

        dom = headless(chrome, "--dump-dom", "file://" + report)
        if dom.returncode != 0 or "<body" not in dom.stdout:
            print(dom.stderr)
            print("FAIL: Chromium did not load the page (exit %d)" % dom.returncode)
            return 1
        page = dom.stdout
        for message in console_messages(dom):
            failures.append("console: " + message)
        for section in SECTIONS:
            if "<h2>%s</h2>" % section not in page:
                failures.append("section %r missing from the DOM" % section)
        svgs_in_file = len(re.findall(r"<svg\b", source))
        svgs_in_dom = len(re.findall(r"<svg\b", page))
        if svgs_in_dom != svgs_in_file or svgs_in_file < 5:
            failures.append("the file has %d <svg> elements, the browser's DOM %d"
                            % (svgs_in_file, svgs_in_dom))
        if "parsererror" in page:
            failures.append("the browser reports a parser error")
        accuracy = "<b>%.2f%%</b>" % (100 * result["test_accuracy"])
        if accuracy not in page:
            failures.append("the test accuracy %s of result.json is not on the page" % accuracy)

        measured = drawn(chrome, run)
        if isinstance(measured, str):
            failures.append(measured)
        else:
            curves_expected = len(re.findall(r"<polyline\b", source))
            if measured["curves"] != curves_expected or curves_expected < 4:
                failures.append("%d of the file's %d curves are drawn"
                                % (measured["curves"], curves_expected))
            if measured["heatmap_cells"] < 2 * CONFIG["epochs"]:
                failures.append("%d heatmap cells are drawn" % measured["heatmap_cells"])
            if measured["drawing_nodes"] < 3:
                failures.append("the architecture drawing shows %d nodes"
                                % measured["drawing_nodes"])

        if artifacts:
            os.makedirs(artifacts, exist_ok=True)
        png = os.path.join(artifacts or tmp, "report.png")
        if os.path.exists(png):
            os.remove(png)
        shot = headless(chrome, "--window-size=1280,2000", "--screenshot=" + png,
                        "file://" + report)
        if not os.path.exists(png):
            failures.append("no screenshot (exit %d): %s" % (shot.returncode, shot.stderr[-500:]))
        else:
            with open(png, "rb") as f:
                header = f.read(24)
            width, height = struct.unpack(">II", header[16:24])
            if header[:8] != b"\x89PNG\r\n\x1a\n" or (width, height) != (1280, 2000):
                failures.append("the screenshot is not a 1280x2000 PNG")
            elif os.path.getsize(png) < 20000:  # a blank page compresses to a few kB
                failures.append("the screenshot is nearly empty (%d bytes)" % os.path.getsize(png))
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("report.html: %d sections and %d inline SVGs in Chromium's DOM, no console "
              "message, test accuracy %s; drawn: %s; screenshot %s"
              % (len(SECTIONS), svgs_in_dom, accuracy, measured, png))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
