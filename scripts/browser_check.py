#!/usr/bin/env python3
"""Open the built book in headless Chromium: every page of the table of contents loads, every figure
image loads, no error output (stderr, traceback) is shown; keep a screenshot of the results page.

    python scripts/browser_check.py book/_build/html [--install]

Chromium is Debian's `chromium`; with --install (or when run as root and it is missing) this script
installs it with apt-get. Exit status 1 when a check fails, 2 when Chromium is unavailable.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CHECKER = """<!doctype html><html><head><meta charset="utf-8"><title>browser check</title></head><body>
<iframe id="f" style="width:1200px;height:4000px"></iframe><pre id="result">pending</pre>
<script>
const pages = %s;
const frame = document.getElementById('f');
function load(url) {
  return new Promise(res => { frame.onload = () => res(); frame.src = url; setTimeout(res, 15000); });
}
function imagesSettled(doc) {
  return Promise.all(Array.from(doc.images).map(img => img.complete ? Promise.resolve() :
      new Promise(r => { img.onload = r; img.onerror = r; setTimeout(r, 5000); })));
}
(async () => {
  const out = [];
  for (const p of pages) {
    await load(p);
    const doc = frame.contentDocument;
    if (!doc || !doc.body) { out.push({page: p, loaded: false}); continue; }
    await imagesSettled(doc);
    const imgs = Array.from(doc.querySelectorAll('main img, article img, .bd-article img'));
    const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
    const errs = Array.from(doc.querySelectorAll('.stderr, .traceback, .output.error, .system-message'))
                  .map(e => e.textContent.slice(0, 200));
    out.push({page: p, loaded: true, title: doc.title, images: imgs.length, broken: broken, errors: errs,
              text: doc.body.innerText.length});
  }
  document.getElementById('result').textContent = JSON.stringify(out);
})();
</script></body></html>"""


def chromium(install: bool) -> str | None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe or not install:
        return exe
    print("installing Debian's chromium (apt-get)...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False)
    return shutil.which("chromium")


def pages(root: Path) -> list[str]:
    skip = {"genindex.html", "search.html", "index.html"}
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("html_dir")
    ap.add_argument("--install", action="store_true", help="apt-get install chromium when missing")
    ap.add_argument("--screenshot-page", default="notebooks/10_paper_vs_ours.html")
    a = ap.parse_args(argv)
    root = Path(a.html_dir).resolve()
    if not (root / "intro.html").exists():
        print(f"{root}: no built book (intro.html missing); run `make book` first", file=sys.stderr)
        return 1
    exe = chromium(a.install or os.geteuid() == 0)
    if not exe:
        print("chromium not found; install Debian's chromium or pass --install", file=sys.stderr)
        return 2
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--disable-dev-shm-usage", "--hide-scrollbars"]
    listed = pages(root)
    checker = root / "_browser_check.html"
    checker.write_text(CHECKER % json.dumps(listed))
    try:
        r = subprocess.run([exe, *flags, "--virtual-time-budget=120000", "--dump-dom", checker.as_uri()],
                           capture_output=True, text=True, timeout=600)
    finally:
        checker.unlink(missing_ok=True)
    m = re.search(r'<pre id="result">(.*?)</pre>', r.stdout, re.S)
    if not m or m.group(1).strip() == "pending":
        print("the checker page did not finish:\n" + r.stderr[-2000:], file=sys.stderr)
        return 1
    results = json.loads(html.unescape(m.group(1)))
    failed = 0
    for res in results:
        bad = (not res["loaded"]) or res.get("broken") or res.get("errors") or res.get("text", 0) < 200
        failed += bool(bad)
        state = "FAIL" if bad else "ok  "
        print(f"{state} {res['page']}: {res.get('images', 0)} images, {len(res.get('broken', []))} broken, "
              f"{len(res.get('errors', []))} error outputs" + (f" {res.get('errors')[:2]}"
                                                               if res.get("errors") else ""))
    shot = root.parent / "screenshot_results.png"
    subprocess.run([exe, *flags, f"--screenshot={shot}", "--window-size=1280,2400",
                    (root / a.screenshot_page).as_uri()], capture_output=True, timeout=300)
    print(f"{len(results)} pages checked, {failed} failed; screenshot: "
          f"{shot if shot.exists() else 'not written'}")
    return 1 if failed or len(results) != len(listed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
