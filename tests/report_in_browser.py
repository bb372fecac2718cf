#!/usr/bin/env python3
"""report.html in a real browser: a small `nasc search --retrain` run's report, opened in
headless Chromium. The DOM the browser builds must hold every section and every inline
<svg> of the file (an unbalanced tag or bad SVG markup would lose some), no XML parser
error, and the test accuracy of result.json; a screenshot must come out. Without Chromium
(the Debian package `chromium`, not a build dependency) the test reports itself skipped
(exit 77) and says why.

    report_in_browser.py NASC_BINARY
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
    cmd = [chrome, "--headless=new", "--no-sandbox", "--disable-gpu", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def main():
    nasc = sys.argv[1]
    chrome = browser()
    if chrome is None:
        print("SKIP: no Chromium (Debian package chromium) to open report.html in")
        return SKIP
    failures = []
    with tempfile.TemporaryDirectory(prefix="nasc_report_") as tmp:
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

        png = os.path.join(tmp, "report.png")
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
        print("report.html: %d sections and %d inline SVGs in Chromium's DOM, test accuracy %s, "
              "screenshot taken" % (len(SECTIONS), svgs_in_dom, accuracy))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
