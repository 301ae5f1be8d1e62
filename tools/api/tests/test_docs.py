"""The HTML reference Bazel builds (//services/digits/api:docs): complete, self-contained,
and the same bytes on every build.

Proves: every operation of the checked-in contract is in the page; the page
loads nothing over the network when viewed (the Redoc bundle's one CDN load
is replaced, no external src/url()/@import/source map remains, no <script
src> or <link>); the .gz is the same page; rendering is deterministic; and
an unknown Redoc bundle is refused rather than shipped unchecked.
"""

import gzip
import json
import pathlib
import re
import subprocess
import sys

from tools.api import docs

ROOT = pathlib.Path("services/digits")
OPENAPI = json.loads((ROOT / "openapi.json").read_text(encoding="utf-8"))
PAGE = (ROOT / "api" / "docs.html").read_text(encoding="utf-8")
PACKED = (ROOT / "api" / "docs.html.gz").read_bytes()


def _redoc():
    return pathlib.Path("external/redoc/redoc").read_text(encoding="utf-8")


def test_the_page_documents_every_operation_and_the_api_version():
    assert f"<title>digits inference service {OPENAPI['info']['version']} reference" in PAGE
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            assert f"<code>{method.upper()} {path}</code>" in PAGE
            assert json.dumps(operation["operationId"]) in PAGE


def test_the_page_loads_nothing_over_the_network():
    assert docs.external_loads(PAGE) == []
    assert "cdn.redoc.ly" not in PAGE
    assert not re.search(r"<script[^>]*\ssrc=", PAGE, re.IGNORECASE)
    assert not re.search(r"<link\b", PAGE, re.IGNORECASE)
    assert "sourceMappingURL=redoc" not in PAGE


def test_the_scan_finds_loads_the_page_must_not_have():
    for bad in ('<img src="https://cdn.example/x.svg">', "a{background:url(//fonts.x/y)}",
                '@import "https://fonts.x/css";', 'createElement("img",{src:"https://x/y"})'):
        assert docs.external_loads(bad), bad
    assert docs.external_loads('<a href="https://redocly.com/">credit</a>') == []


def test_the_gzip_copy_is_the_same_page_and_small():
    assert gzip.decompress(PACKED).decode("utf-8") == PAGE
    assert len(PACKED) < 512 * 1024


def test_rendering_twice_gives_the_same_bytes(tmp_path):
    for run in ("a", "b"):
        subprocess.run([sys.executable, "tools/api/docs.py", "--openapi",
                        str(ROOT / "openapi.json"), "--redoc", "external/redoc/redoc",
                        "--html", str(tmp_path / f"{run}.html"),
                        "--gzip", str(tmp_path / f"{run}.html.gz")], check=True)
    assert (tmp_path / "a.html.gz").read_bytes() == (tmp_path / "b.html.gz").read_bytes()
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_a_redoc_bundle_that_fetches_something_else_is_refused(tmp_path):
    bundle = tmp_path / "redoc.js"
    bundle.write_text(_redoc().replace("https://cdn.redoc.ly/redoc/logo-mini.svg",
                                       "https://cdn.example/logo.svg"), encoding="utf-8")
    result = subprocess.run([sys.executable, "tools/api/docs.py", "--openapi",
                             str(ROOT / "openapi.json"), "--redoc", str(bundle),
                             "--html", str(tmp_path / "out.html")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "docs: the Redoc bundle no longer loads https://cdn.redoc.ly" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.html").exists()


def test_the_page_is_titled_by_the_document_it_renders(tmp_path):
    # Nothing of the example service is built in: another service's document
    # gives a page about that service.
    other = json.loads(json.dumps(OPENAPI))
    other["info"]["title"] = "iris inference service"
    other["info"]["version"] = "2.3"
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(other), encoding="utf-8")
    subprocess.run([sys.executable, "tools/api/docs.py", "--openapi", str(source),
                    "--redoc", "external/redoc/redoc", "--html", str(tmp_path / "out.html")],
                   check=True)
    page = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert "<title>iris inference service 2.3 reference" in page
