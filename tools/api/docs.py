"""Builds the HTML reference of an OpenAPI document: one self-contained page.

    docs.py --openapi services/iris/openapi.json --redoc redoc.standalone.js \\
        --license LICENSE.txt --html docs.html --gzip docs.html.gz

Run by the `api_docs` rule (tools/api/defs.bzl) inside a Bazel action, with no
network. The page is rendered by Redoc (the npm package's standalone bundle,
pinned by integrity in WORKSPACE), with the document and the bundle inlined:
viewing it loads nothing from anywhere (no CDN, no fonts, no spec URL). A
<noscript> list of the operations keeps it useful without JavaScript. The
gzip copy (fixed mtime, no file name: the same bytes every build) is what the
service sends.
"""

import argparse
import gzip
import html
import io
import json
import re
import sys

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Redoc settings: no "download" button (it would point at a URL), no sponsor
# link, the page's own fonts.
REDOC_OPTIONS = {
    "hideDownloadButton": True,
    "hideLoading": True,
    "disableSearch": False,
    "expandResponses": "200",
    "jsonSampleExpandLevel": 3,
    "theme": {"typography": {
        "fontFamily": "system-ui, -apple-system, 'Segoe UI', sans-serif",
        "headings": {"fontFamily": "system-ui, -apple-system, 'Segoe UI', sans-serif"},
        "code": {"fontFamily": "ui-monospace, 'DejaVu Sans Mono', monospace"}}},
}


# What the bundle would fetch at view time, and what the page uses instead: the
# sidebar's "API docs by Redocly" logo comes from a CDN. A tiny inline SVG
# keeps the credit without the request.
_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_INLINE_LOGO = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' "
                "width='12' height='12'%3E%3Ccircle cx='6' cy='6' r='5' "
                "fill='%23e53935'/%3E%3C/svg%3E")
# Any remaining way for the page to load from the network: a URL in src/url()/
# @import/fetch()/new Worker() or a source map (devtools fetch it).
_EXTERNAL = re.compile(
    r"""(?:\b(?:src|poster|srcset)\s*[:=]\s*["']?|url\(\s*["']?|@import\s+["']?|"""
    r"""fetch\(\s*["']|Worker\(\s*["']|sourceMappingURL=)(?:https?:)?//""", re.IGNORECASE)


class DocsError(Exception):
    """A problem with the inputs, shown as one line."""


def offline_bundle(redoc_js):
    """The Redoc bundle with nothing to fetch: the CDN logo inlined, no source map."""
    if _CDN_LOGO not in redoc_js:
        raise DocsError(f"the Redoc bundle no longer loads {_CDN_LOGO}: a new Redoc version; "
                        "check what it fetches at view time and update tools/api/docs.py")
    redoc_js = redoc_js.replace(_CDN_LOGO, _INLINE_LOGO)
    return re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", redoc_js)


def external_loads(page):
    """The places in `page` that would load something over the network (empty: none)."""
    return [page[max(0, m.start() - 40):m.end() + 40] for m in _EXTERNAL.finditer(page)]


def _script_json(value):
    """JSON that is safe inside <script>: no "</" can end the element early."""
    return json.dumps(value, sort_keys=False, separators=(",", ":")).replace("</", "<\\/")


def _noscript(doc):
    rows = []
    for path, item in (doc.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if method in item:
                summary = item[method].get("summary", "")
                rows.append(f"<li><code>{method.upper()} {html.escape(path)}</code> "
                            f"{html.escape(summary)}</li>")
    return ("<noscript><p>This reference is rendered with JavaScript. The operations:</p>"
            f"<ul>{''.join(rows)}</ul><p>The machine-readable contract: "
            "<a href=\"/openapi.json\">/openapi.json</a>.</p></noscript>")


def render(doc, redoc_js, license_text=""):
    """The page's HTML text for the OpenAPI document `doc`."""
    if "</script" in redoc_js.lower():
        raise DocsError("the Redoc bundle contains '</script': it cannot be inlined")
    info = doc.get("info") or {}
    title = html.escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    notice = license_text.replace("--", "- -")
    return (
        "<!DOCTYPE html>\n"
        "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title} reference</title>\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"generator\" content=\"modelship tools/api/docs.py with Redoc\">\n"
        "<style>body{margin:0;padding:0}</style>\n</head>\n<body>\n"
        f"{_noscript(doc)}\n<div id=\"redoc\"></div>\n"
        f"<!-- Redoc (MIT) and the libraries it bundles:\n{notice}\n-->\n"
        f"<script>{redoc_js}</script>\n"
        f"<script>Redoc.init({_script_json(doc)}, {_script_json(REDOC_OPTIONS)}, "
        "document.getElementById(\"redoc\"));</script>\n"
        "</body>\n</html>\n")


def gzip_bytes(data):
    """Deterministic gzip: no mtime, no file name."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9,
                       mtime=0) as out:
        out.write(data)
    return buffer.getvalue()


def _read(path):
    try:
        with open(path, encoding="utf-8") as text:
            return text.read()
    except (OSError, UnicodeDecodeError) as err:
        raise DocsError(f"cannot read {path}: {err}") from None


def main(argv=None):
    """Entry point; 0 when the page is written, 1 on a problem."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--openapi", required=True, help="the OpenAPI document (JSON)")
    parser.add_argument("--redoc", required=True, help="redoc.standalone.js")
    parser.add_argument("--license", help="the bundle's license notices, kept in the page")
    parser.add_argument("--html", help="write the page here")
    parser.add_argument("--gzip", help="write the page, gzip-compressed, here")
    args = parser.parse_args(argv)
    try:
        try:
            doc = json.loads(_read(args.openapi))
        except ValueError as err:
            raise DocsError(f"{args.openapi} is not JSON: {err}") from None
        page = render(doc, offline_bundle(_read(args.redoc)),
                      _read(args.license) if args.license else "")
        found = external_loads(page)
        if found:
            raise DocsError(f"the page would load {len(found)} thing(s) from the network at "
                            f"view time, e.g. {found[0]!r}; it must be self-contained")
    except DocsError as err:
        print(f"docs: {err}", file=sys.stderr)
        return 1
    data = page.encode("utf-8")
    if args.html:
        with open(args.html, "wb") as out:
            out.write(data)
    if args.gzip:
        with open(args.gzip, "wb") as out:
            out.write(gzip_bytes(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
