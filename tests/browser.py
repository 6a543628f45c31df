"""Open every page of a built book in headless Chromium (Debian's, via Playwright) and report
console errors, charts that did not render, and requests to non-local URLs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "chromium-headless-shell"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    page: str
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)  # network failures and HTTP >= 400
    charts: int = 0
    empty_charts: list[str] = field(default_factory=list)  # charts whose marks have nothing to draw
    broken_images: list[str] = field(default_factory=list)
    screenshot: str = ""


def check_book(html_dir: Path, screenshots: Path) -> list[PageReport]:
    """Serve ``html_dir`` on 127.0.0.1, visit every page, save a full-page screenshot of each."""
    import functools
    import http.server
    import threading

    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return _visit(html_dir, f"http://127.0.0.1:{server.server_address[1]}", screenshots)
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(__import__("http.server").server.SimpleHTTPRequestHandler):
    missing: list[str] = []  # paths answered 404, any page

    def log_message(self, *args):
        pass

    def send_error(self, code, *args, **kwargs):
        if code == 404:
            _QuietHandler.missing.append(self.path)
        super().send_error(code, *args, **kwargs)


def _visit(html_dir: Path, base: str, screenshots: Path) -> list[PageReport]:
    from playwright.sync_api import sync_playwright

    exe = chromium()
    if exe is None:
        raise RuntimeError("Chromium is not installed: run `make browser` (apt-get install chromium)")
    screenshots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts and p.name not in ("search.html", "genindex.html"))
    reports = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        for html in pages:
            rel = str(html.relative_to(html_dir))
            report = PageReport(rel)
            page = context.new_page()
            page.on("console", lambda m, r=report: r.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e, r=report: r.console_errors.append(str(e)))

            def on_request(req, r=report):
                url = urlparse(req.url)
                if url.scheme not in ("data", "blob", "about") and url.hostname not in ("127.0.0.1", "localhost"):
                    r.external_requests.append(req.url)

            page.on("request", on_request)
            page.on("requestfailed", lambda req, r=report: r.failed_requests.append(req.url))
            page.on("response", lambda resp, r=report: r.failed_requests.append(f"{resp.status} {resp.url}")
                    if resp.status >= 400 else None)
            page.goto(f"{base}/{rel}", wait_until="load")
            page.wait_for_timeout(300)  # let MathJax typeset
            # charts are altair SVGs, shown as <img> by the notebook renderer (or inline <svg>)
            report.charts = page.evaluate(
                "() => [...document.querySelectorAll('img')].filter(i => i.src.includes('.svg') || i.src.startsWith('data:image/svg')).length"
                " + document.querySelectorAll('main svg.marks').length")
            # a vega chart draws its data in 'role-mark' groups: one where none has a child shows no data
            report.empty_charts = page.evaluate("""async () => {
                const empty = [];
                const sources = [...document.querySelectorAll('img')].map(i => i.src)
                    .filter(s => s.includes('.svg') || s.startsWith('data:image/svg'));
                for (const src of sources) {
                    const svg = new DOMParser().parseFromString(await (await fetch(src)).text(), 'image/svg+xml');
                    const marks = [...svg.querySelectorAll('g.role-mark')];
                    if (marks.length && marks.every(g => g.childElementCount === 0)) empty.push(src);
                }
                for (const svg of document.querySelectorAll('main svg.marks')) {
                    const marks = [...svg.querySelectorAll('g.role-mark')];
                    if (marks.length && marks.every(g => g.childElementCount === 0)) empty.push('inline svg');
                }
                return empty;
            }""")
            report.broken_images = page.evaluate(
                "() => [...document.querySelectorAll('img')].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
            shot = screenshots / (rel.replace("/", "__").removesuffix(".html") + ".png")
            page.screenshot(path=str(shot), full_page=True)
            report.screenshot = str(shot)
            page.close()
            reports.append(report)
        browser.close()
    return reports
