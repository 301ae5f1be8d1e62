"""The image's software bill of materials, from the locks (not from a scan).

    python3 tools/trust/sbom.py generate --inputs sbom/inputs.json --out DIR   (in the image)
    bazel run //tools/trust:sbom -- summary FILE                               (anywhere)

Two halves, because no single place knows everything:
  - when the build context is prepared (tools/image/build.py, `context_inputs`), the
    host has the .deb files: each package of third_party/debian/base.lock (the
    production root filesystem) is recorded with its version, the sha256 the lock pins
    and the licences of its /usr/share/doc/<pkg>/copyright (DEP-5 `License:` fields;
    NOASSERTION when the file is not machine-readable). With the model (its sha256, the
    target that builds it, where its weights come from) and the commit, that goes into
    the context as sbom/inputs.json;
  - in the image's dev stage (the Dockerfile, after finalize.py; network off, standard
    library only) `generate` adds what only the installed tree shows: every wheel of
    the runtime lock as installed in production's site (name, version, the sha256 of the
    wheel file pip installed, which must be one the lock pins, the licence of its
    METADATA), our own packages (version: the commit), the Cython extension modules
    (sha256 of each .so) and the model file's sha256 (checked against inputs.json). A
    lock entry not installed, or an installed distribution no lock pins, is an error
    naming it. It writes SPDX 2.3 JSON and CycloneDX 1.5 JSON from that one inventory,
    byte-identical for the same commit: time = SOURCE_DATE_EPOCH (the commit's), entries
    sorted, the SPDX namespace and the CycloneDX serial number derived from the content.

The production image carries both at /var/lib/db/sbom/<image>.spdx.json and
<image>.cdx.json (tools/trust/README.md, "SBOM").
"""

import argparse
import email.parser
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import urllib.parse
import uuid

# Run as a script from the repository root in the image's dev stage, like finalize.py.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.trust import errors  # noqa: E402  pylint: disable=wrong-import-position

TrustError = errors.TrustError

INPUTS_FORMAT = 1
# Where the production image carries its SBOM (the Dockerfile copies it there).
IMAGE_SBOM_DIR = "/var/lib/db/sbom"
# Component kinds, in the order a summary lists them.
KINDS = ("deb", "wheel", "model", "model-source", "source", "extension")
NOASSERTION = "NOASSERTION"
# The namespace of our SPDX documents and of the CycloneDX serial numbers; not a host
# anything is downloaded from.
NAMESPACE = "https://modelship.dev/sbom"
TOOL = "modelship tools/trust/sbom.py"
# How many licences a summary lists (the rest are counted).
SUMMARY_LICENCES = 12

# --- Licences -------------------------------------------------------------------

# SPDX identifiers the licence texts of our inputs resolve to. An identifier not listed
# here becomes a LicenseRef- (with the original name as its text), so the documents stay
# valid whatever a package declares.
SPDX_IDS = frozenset("""
0BSD AFL-2.1 Apache-1.1 Apache-2.0 Artistic-1.0 Artistic-1.0-Perl Artistic-2.0
BSD-1-Clause BSD-2-Clause BSD-3-Clause BSD-4-Clause BSL-1.0 CC0-1.0 CC-BY-4.0
GFDL-1.3-no-invariants-or-later GFDL-1.3-or-later GPL-1.0-only GPL-1.0-or-later
GPL-2.0-only GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND ISC LGPL-2.0-only
LGPL-2.0-or-later LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only LGPL-3.0-or-later MIT
MIT-CMU MPL-1.1 MPL-2.0 MS-PL OpenSSL PSF-2.0 Python-2.0 Sleepycat TCL Unlicense
Unicode-DFS-2016 X11 Zlib
""".split())
# Debian's DEP-5 short names (and PyPI's usual License values) -> SPDX identifiers.
ALIASES = {
    "apache-2": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0", "apache software license": "Apache-2.0",
    "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause", "expat": "MIT", "mit license": "MIT", "mit": "MIT",
    "gpl-1": "GPL-1.0-only", "gpl-1+": "GPL-1.0-or-later", "gpl-2": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later", "gpl-3": "GPL-3.0-only", "gpl-3+": "GPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only", "lgpl-2+": "LGPL-2.0-or-later", "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later", "lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later",
    "artistic": "Artistic-1.0", "artistic-2.0": "Artistic-2.0", "zlib": "Zlib",
    "gfdl-niv-1.3+": "GFDL-1.3-no-invariants-or-later", "gfdl-1.3+": "GFDL-1.3-or-later",
    "ms-pl": "MS-PL", "psf": "PSF-2.0", "psf-2.0": "PSF-2.0",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0", "bsd license": "LicenseRef-BSD",
}
# Trove classifiers (the last resort for a wheel) -> SPDX identifiers.
CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: BSD License": "LicenseRef-BSD",
}
_OPERATOR = re.compile(r"\s+(or|and|with)\s+|\s*,\s*|([()])", re.IGNORECASE)


def license_id(name):
    """The SPDX identifier (or LicenseRef-) of one licence name."""
    text = name.strip()
    if text in SPDX_IDS or text.startswith("LicenseRef-"):
        return text
    alias = ALIASES.get(text.lower())
    if alias:
        return alias
    for known in SPDX_IDS:
        if known.lower() == text.lower():
            return known
    return "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown")


def license_expression(text):
    """An SPDX licence expression from a DEP-5 `License:` line or a License-Expression.

    'or'/'and' (any case) become OR/AND (AND binds tighter in both, so the order
    stays); 'A with B exception' becomes one LicenseRef- (SPDX's exception list is not
    ours to guess); a DEP-5 comma means 'and'. Empty -> NOASSERTION."""
    text = " ".join(text.split())
    if not text:
        return NOASSERTION
    parts, last, pending = [], 0, []
    tokens = []
    for match in _OPERATOR.finditer(text):
        tokens.append(text[last:match.start()])
        tokens.append((match.group(1) or match.group(2) or "and").lower())
        last = match.end()
    tokens.append(text[last:])
    # Fold 'X with Y' into one name.
    for token in tokens:
        if pending and pending[-1] == "with":
            pending.pop()
            pending[-1] = pending[-1] + " with " + token
        else:
            pending.append(token)
    for token in pending:
        if token in ("or", "and"):
            parts.append(token.upper())
        elif token in ("(", ")"):
            parts.append(token)
        elif token.strip():
            parts.append(license_id(token))
    expression = " ".join(parts).replace("( ", "(").replace(" )", ")")
    return expression or NOASSERTION


def _combine(expressions):
    """One expression for several (all apply): sorted, deduplicated, ANDed."""
    unique = sorted(set(e for e in expressions if e != NOASSERTION))
    if not unique:
        return NOASSERTION
    if len(unique) == 1:
        return unique[0]
    return " AND ".join(f"({e})" if " " in e else e for e in unique)


def debian_copyright_license(text):
    """The licence expression of a Debian copyright file: the `License:` fields of its
    DEP-5 `Files:` paragraphs, ANDed; NOASSERTION when the file is not machine-readable
    (no `Format:` field in its first paragraph)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    if not paragraphs or not re.match(r"(?im)^format:\s*\S", paragraphs[0]):
        return NOASSERTION
    found = []
    for paragraph in paragraphs:
        if not re.search(r"(?im)^files:", paragraph):
            continue
        match = re.search(r"(?im)^license:[ \t]*(.*)$", paragraph)
        if match and match.group(1).strip():
            found.append(license_expression(match.group(1)))
    return _combine(found)


def wheel_license(metadata_text):
    """The licence of a distribution from its METADATA: License-Expression, else a short
    License value we can name, else the licence classifiers; NOASSERTION otherwise."""
    headers = email.parser.HeaderParser().parsestr(metadata_text)
    expression = (headers.get("License-Expression") or "").strip()
    if expression:
        return license_expression(expression)
    value = (headers.get("License") or "").strip()
    if value and "\n" not in value and len(value) <= 80:
        named = license_expression(value)
        if not all(part.startswith("LicenseRef-") for part in _ids(named)):
            return named
    classified = [CLASSIFIERS[c.strip()] for c in headers.get_all("Classifier") or []
                  if c.strip() in CLASSIFIERS]
    if classified:
        return _combine(classified)
    return NOASSERTION


def _ids(expression):
    return [t for t in re.split(r"[\s()]+", expression) if t and t not in ("AND", "OR")]


# --- Locks ----------------------------------------------------------------------


def read_debian_lock(path):
    """[{name, version, arch, sha256, pool}] of a Debian lock (tools/debian/lock.py)."""
    entries = []
    with open(path, encoding="utf-8") as lock:
        for number, line in enumerate(lock, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 5 or not re.fullmatch(r"[0-9a-f]{64}", fields[3]):
                raise TrustError(f"{path}:{number}: not a Debian lock line (package version "
                                 f"architecture sha256 pool-path): {line.strip()!r}")
            entries.append(dict(zip(("name", "version", "arch", "sha256", "pool"), fields)))
    return entries


def normalize(name):
    """PEP 503 name: lower case, runs of -_. as one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_python_lock(path):
    """{normalized name: (version, frozenset of sha256)} of a pip-tools lock."""
    with open(path, encoding="utf-8") as text:
        joined = text.read().replace("\\\n", " ")
    pins = {}
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)", line)
        if not match:
            continue
        hashes = frozenset(p.split(":", 1)[1] for p in line.split()
                           if p.startswith("--hash=sha256:"))
        name = normalize(match.group(1))
        if name in pins and pins[name][0] != match.group(3):
            raise TrustError(f"{path}: {name} is pinned twice ({pins[name][0]} and "
                             f"{match.group(3)}); re-lock")
        pins[name] = (match.group(3), hashes | pins.get(name, ("", frozenset()))[1])
    return pins


# --- Host side: what the build context carries ------------------------------------


def deb_docs(deb):
    """{path: bytes or ('link', target)} of the /usr/share/doc entries of a .deb."""
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise TrustError(f"{os.path.basename(deb)}: dpkg-deb cannot read it: "
                         f"{proc.stderr.decode(errors='replace').strip()}; delete it from the "
                         f"cache and build again")
    found = {}
    with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:") as tar:
        for member in tar:
            name = member.name.lstrip("./")
            if not name.startswith("usr/share/doc/"):
                continue
            if member.issym():
                found[name] = ("link", member.linkname)
            elif member.isfile() and name.endswith("/copyright"):
                found[name] = tar.extractfile(member).read()
    return found


def debian_packages(lock_path, debs_dir, read_docs=deb_docs):
    """The packages of a Debian lock with the licence of each, read from its .deb (a
    /usr/share/doc/<pkg> that is a link to another package's folder is followed into
    that package's .deb, which must be in the lock too)."""
    entries = read_debian_lock(lock_path)
    by_name = {e["name"]: e for e in entries}
    docs = {}

    def docs_of(name):
        if name not in docs:
            entry = by_name[name]
            deb = os.path.join(debs_dir, os.path.basename(entry["pool"]))
            if not os.path.isfile(deb):
                raise TrustError(f"{name}={entry['version']}: {deb} is missing; fetch the "
                                 f"lock's files first (tools/debian/fetch.py)")
            docs[name] = read_docs(deb)
        return docs[name]

    packages = []
    for entry in entries:
        name, text, seen = entry["name"], None, set()
        while name in by_name and name not in seen:
            seen.add(name)
            found = docs_of(name)
            link = found.get(f"usr/share/doc/{name}")
            if isinstance(link, tuple):
                name = os.path.basename(link[1].rstrip("/"))
                continue
            text = found.get(f"usr/share/doc/{name}/copyright")
            break
        packages.append({
            "name": entry["name"], "version": entry["version"], "arch": entry["arch"],
            "sha256": entry["sha256"],
            "license": (debian_copyright_license(text.decode("utf-8", errors="replace"))
                        if text is not None else NOASSERTION),
        })
    return packages


def context_inputs(*, image_name, revision, epoch, source_url, debian, model):
    """The document the build context carries as sbom/inputs.json (what only the host
    knows). `debian`: debian_packages(); `model`: {name, file, sha256, target, source}."""
    for field in ("name", "file", "sha256", "target", "source"):
        if field not in model:
            raise TrustError(f"SBOM inputs: the model entry has no {field!r}")
    return {
        "format": INPUTS_FORMAT,
        "image": {"name": image_name, "revision": revision, "created": int(epoch),
                  "source": source_url},
        "debian": sorted(debian, key=lambda p: p["name"]),
        "model": dict(model),
    }


# --- Image side: what is installed ------------------------------------------------


def sha256_file(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(folder):
    """sha256 over the sorted lines '<sha256>  <path>' of every file below `folder`: one
    checkable digest for a source package (`sha256sum` of each file gives the lines)."""
    lines = []
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            path = os.path.join(top, name)
            lines.append(f"{sha256_file(path)}  {os.path.relpath(path, folder)}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def installed_distributions(site):
    """{normalized name: (version, METADATA text, dist-info folder)} of a site folder."""
    found = {}
    for entry in sorted(os.listdir(site)):
        if not entry.endswith(".dist-info"):
            continue
        with open(os.path.join(site, entry, "METADATA"), encoding="utf-8") as text:
            metadata = text.read()
        headers = email.parser.HeaderParser().parsestr(metadata)
        found[normalize(headers["Name"])] = (headers["Version"], metadata, entry)
    return found


def wheel_files(wheels_dir):
    """{sha256: file name} of the wheel files in a folder (the first name of each)."""
    files = {}
    for entry in sorted(os.listdir(wheels_dir)):
        path = os.path.join(wheels_dir, entry)
        if entry.endswith(".whl") and os.path.isfile(path):
            files.setdefault(sha256_file(path), entry)
    return files


def wheel_components(site, lock, wheels_dir):
    """A component per installed distribution, each checked against the lock: the lock
    must pin every installed one at its version, and every pin must be installed."""
    installed = installed_distributions(site)
    pins = read_python_lock(lock)
    problems = []
    for name in sorted(set(pins) - set(installed)):
        problems.append(f"{name}=={pins[name][0]} is in the lock {lock} but not installed "
                        f"in {site}")
    for name in sorted(set(installed) - set(pins)):
        problems.append(f"{name}=={installed[name][0]} is installed in {site} but no lock "
                        f"pins it ({installed[name][2]})")
    for name in sorted(set(pins) & set(installed)):
        if pins[name][0] != installed[name][0]:
            problems.append(f"{name}: the lock pins {pins[name][0]}, {site} holds "
                            f"{installed[name][0]}")
    if problems:
        raise TrustError("the installed wheels and the lock disagree: " + "; ".join(problems)
                         + ". Rebuild the image from the lock (pip install --require-hashes)")
    files = wheel_files(wheels_dir)
    components = []
    for name in sorted(pins):
        version, hashes = pins[name]
        chosen = sorted((files[h], h) for h in hashes if h in files)
        if not chosen:
            raise TrustError(f"{name}=={version}: no wheel in {wheels_dir} has a sha256 the "
                             f"lock {lock} pins; the image build places them there")
        components.append({
            "kind": "wheel", "name": name, "version": version, "sha256": chosen[0][1],
            "purl": f"pkg:pypi/{name}@{version}", "wheel": chosen[0][0],
            "license": wheel_license(installed[name][1]),
        })
    return components


def code_components(app, revision):
    """Our own packages (top-level folders of the shipped app) and the Cython extension
    modules in them (every .so, by its sha256)."""
    components = []
    for package in sorted(os.listdir(app)):
        folder = os.path.join(app, package)
        if not os.path.isdir(folder) or package.startswith((".", "__")):
            continue
        components.append({"kind": "source", "name": package, "version": revision,
                           "sha256": tree_sha256(folder), "license": NOASSERTION,
                           "file": f"/opt/modelship/app/{package}"})
        for top, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(f for f in files if f.endswith(".so")):
                rel = os.path.relpath(os.path.join(top, name), app)
                module = rel.split(".", 1)[0].replace("/", ".")
                components.append({"kind": "extension", "name": module, "version": revision,
                                   "sha256": sha256_file(os.path.join(app, rel)),
                                   "license": NOASSERTION, "file": f"/opt/modelship/app/{rel}"})
    return components


def deb_purl(name, version, arch):
    """pkg:deb/debian/<name>@<version>?arch=<arch> (version percent-encoded, ':' kept)."""
    return f"pkg:deb/debian/{name}@{_quote(version)}?arch={arch}"


def _quote(text):
    return urllib.parse.quote(text, safe=":")


def inventory(inputs, *, site, lock, wheels_dir, app, model_dir):
    """Every component of the image: the host's inputs checked and completed with what is
    installed. The one data both formats are written from."""
    if not isinstance(inputs, dict) or inputs.get("format") != INPUTS_FORMAT:
        found = inputs.get("format") if isinstance(inputs, dict) else inputs
        raise TrustError(f"SBOM inputs: format {INPUTS_FORMAT} expected (written by "
                         f"tools/image/build.py), got {found!r}")
    image, model = inputs["image"], inputs["model"]
    components = [{"kind": "deb", "name": p["name"], "version": p["version"],
                   "sha256": p["sha256"], "purl": deb_purl(p["name"], p["version"], p["arch"]),
                   "license": p["license"], "supplier": "Debian"} for p in inputs["debian"]]
    components += wheel_components(site, lock, wheels_dir)
    model_path = os.path.join(model_dir, model["file"])
    if not os.path.isfile(model_path):
        raise TrustError(f"the model file {model_path} is not in the image")
    found = sha256_file(model_path)
    if found != model["sha256"]:
        raise TrustError(f"{model_path}: sha256 {found}, but the build context recorded "
                         f"{model['sha256']}; rebuild the context")
    entry = {"kind": "model", "name": model["name"], "version": model["sha256"],
             "sha256": model["sha256"], "license": NOASSERTION,
             "file": f"/opt/modelship/model/{model['file']}",
             "description": f"built by {model['target']} at {image['revision']}"}
    if model["source"]:
        entry["source"] = model["source"]
        source = {"kind": "model-source", "name": model["source"]["name"],
                  "version": model["source"]["version"], "purl": model["source"]["purl"],
                  "license": NOASSERTION, "description": "what the model was converted from"}
        if model["source"].get("sha256"):
            source["sha256"] = model["source"]["sha256"]
        components.append(source)
    components.append(entry)
    components += code_components(app, image["revision"])
    return {"image": dict(image), "components": sorted(components, key=_order)}


def _order(component):
    return (KINDS.index(component["kind"]), component["name"], component["version"])


# --- The two formats ---------------------------------------------------------------


def _rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _content_id(inv):
    return hashlib.sha256(json.dumps(inv, sort_keys=True).encode()).hexdigest()


def _spdx_id(component):
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-",
                               f"{component['kind']}-{component['name']}")


def _license_refs(inv):
    refs = set()
    for component in inv["components"]:
        refs.update(i for i in _ids(component["license"]) if i.startswith("LicenseRef-"))
    return sorted(refs)


_PURPOSE = {"deb": "LIBRARY", "wheel": "LIBRARY", "model": "OTHER", "model-source": "ARCHIVE",
            "source": "SOURCE", "extension": "LIBRARY"}


def spdx_document(inv):
    """The inventory as an SPDX 2.3 JSON document (a dict)."""
    image = inv["image"]
    root = {"SPDXID": "SPDXRef-image", "name": image["name"], "versionInfo": image["revision"],
            "downloadLocation": NOASSERTION, "filesAnalyzed": False,
            "primaryPackagePurpose": "CONTAINER", "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION, "copyrightText": NOASSERTION,
            "comment": f"kind: image; source: {image['source']}"}
    packages, relationships = [root], [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
         "relatedSpdxElement": "SPDXRef-image"}]
    for component in inv["components"]:
        package = {
            "SPDXID": _spdx_id(component), "name": component["name"],
            "versionInfo": component["version"], "downloadLocation": NOASSERTION,
            "filesAnalyzed": False, "primaryPackagePurpose": _PURPOSE[component["kind"]],
            "licenseConcluded": NOASSERTION, "licenseDeclared": component["license"],
            "copyrightText": NOASSERTION, "comment": f"kind: {component['kind']}",
        }
        if component.get("sha256"):
            package["checksums"] = [{"algorithm": "SHA256",
                                     "checksumValue": component["sha256"]}]
        if component.get("purl"):
            package["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER",
                                        "referenceType": "purl",
                                        "referenceLocator": component["purl"]}]
        if component.get("supplier"):
            package["supplier"] = f"Organization: {component['supplier']}"
        if component.get("file"):
            package["comment"] += f"; path: {component['file']}"
        if component.get("wheel"):
            package["packageFileName"] = component["wheel"]
        if component.get("description"):
            package["description"] = component["description"]
        packages.append(package)
        if component["kind"] == "model-source":
            continue
        relationships.append({"spdxElementId": "SPDXRef-image", "relationshipType": "CONTAINS",
                              "relatedSpdxElement": package["SPDXID"]})
        if component["kind"] == "model" and component.get("source"):
            relationships.append({
                "spdxElementId": package["SPDXID"], "relationshipType": "GENERATED_FROM",
                "relatedSpdxElement": _spdx_id({"kind": "model-source",
                                                "name": component["source"]["name"]})})
    content = _content_id(inv)
    doc = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{image['name']}@{image['revision']}",
        "documentNamespace": f"{NAMESPACE}/{image['name']}/{image['revision']}-{content[:16]}",
        "creationInfo": {"created": _rfc3339(image["created"]),
                         "creators": [f"Tool: {TOOL}"]},
        "packages": sorted(packages, key=lambda p: p["SPDXID"]),
        "relationships": sorted(relationships, key=lambda r: (
            r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])),
    }
    refs = _license_refs(inv)
    if refs:
        doc["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "name": ref[len("LicenseRef-"):],
             "extractedText": f"The licence named {ref[len('LicenseRef-'):]!r} by the "
                              f"package's own metadata (no SPDX identifier)."}
            for ref in refs]
    return doc


def _cdx_licenses(expression):
    if expression == NOASSERTION:
        return None
    if expression in SPDX_IDS:
        return [{"license": {"id": expression}}]
    return [{"expression": expression}]


_CDX_TYPE = {"deb": "library", "wheel": "library", "model": "machine-learning-model",
             "model-source": "data", "source": "application", "extension": "library"}


def _bom_ref(component):
    return f"{component['kind']}:{component['name']}@{component['version']}"


def _cdx_component(component):
    entry = {"type": _CDX_TYPE[component["kind"]], "bom-ref": _bom_ref(component),
             "name": component["name"], "version": component["version"],
             "properties": [{"name": "modelship:kind", "value": component["kind"]}]}
    for field in ("file", "wheel"):
        if component.get(field):
            entry["properties"].append({"name": f"modelship:{'path' if field == 'file' else field}",
                                        "value": component[field]})
    if component.get("sha256"):
        entry["hashes"] = [{"alg": "SHA-256", "content": component["sha256"]}]
    if component.get("purl"):
        entry["purl"] = component["purl"]
    licenses = _cdx_licenses(component["license"])
    if licenses:
        entry["licenses"] = licenses
    if component.get("supplier"):
        entry["supplier"] = {"name": component["supplier"]}
    if component.get("description"):
        entry["description"] = component["description"]
    if component["kind"] == "model-source" and entry["type"] == "data":
        # CycloneDX 1.5 wants data components described as such.
        entry["data"] = [{"type": "dataset", "name": component["name"]}]
    return entry


def cyclonedx_document(inv):
    """The inventory as a CycloneDX 1.5 JSON document (a dict)."""
    image = inv["image"]
    components = []
    sources = {c["name"]: c for c in inv["components"] if c["kind"] == "model-source"}
    for component in inv["components"]:
        if component["kind"] == "model-source":
            continue
        entry = _cdx_component(component)
        if component["kind"] == "model" and component.get("source"):
            ancestor = _cdx_component(sources[component["source"]["name"]])
            entry["pedigree"] = {"ancestors": [ancestor]}
        components.append(entry)
    root_ref = f"image:{image['name']}@{image['revision']}"
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX", "specVersion": "1.5",
        "serialNumber": uuid.uuid5(uuid.NAMESPACE_URL,
                                   f"{NAMESPACE}/{_content_id(inv)}").urn,
        "version": 1,
        "metadata": {
            "timestamp": _rfc3339(image["created"]),
            "tools": {"components": [{"type": "application", "name": TOOL}]},
            "component": {"type": "container", "bom-ref": root_ref, "name": image["name"],
                          "version": image["revision"],
                          "externalReferences": [{"type": "vcs", "url": image["source"]}]},
        },
        "components": components,
        "dependencies": [{"ref": root_ref,
                          "dependsOn": sorted(c["bom-ref"] for c in components)}],
    }


def dumps(doc):
    """The bytes written: sorted keys, two-space indent, ASCII, a final newline."""
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")


def write(inv, out_dir):
    """Writes <image>.spdx.json and <image>.cdx.json into `out_dir`; returns their paths
    (in that order)."""
    os.makedirs(out_dir, exist_ok=True)
    spdx_path = os.path.join(out_dir, inv["image"]["name"] + ".spdx.json")
    cdx_path = os.path.join(out_dir, inv["image"]["name"] + ".cdx.json")
    for path, render in ((spdx_path, spdx_document), (cdx_path, cyclonedx_document)):
        with open(path, "wb") as out:
            out.write(dumps(render(inv)))
    return spdx_path, cdx_path


# --- Reading one back: the summary ---------------------------------------------------


def read_components(doc):
    """[{kind, name, version, license, sha256}] of an SPDX or CycloneDX document we wrote."""
    found = []
    if doc.get("spdxVersion"):
        for package in doc.get("packages", []):
            kind = (package.get("comment") or "").split(";")[0].replace("kind: ", "")
            if kind == "image":
                continue
            checksums = {c["algorithm"]: c["checksumValue"] for c in package.get("checksums", [])}
            found.append({"kind": kind, "name": package["name"],
                          "version": package.get("versionInfo", ""),
                          "description": package.get("description", ""),
                          "license": package.get("licenseDeclared", NOASSERTION),
                          "sha256": checksums.get("SHA256", "")})
        return found
    if doc.get("bomFormat") == "CycloneDX":
        for component in doc.get("components", []):
            props = {p["name"]: p["value"] for p in component.get("properties", [])}
            licenses = component.get("licenses") or []
            text = " AND ".join(e.get("expression") or e["license"].get("id")
                                or e["license"].get("name", "") for e in licenses)
            found.append({"kind": props.get("modelship:kind", component["type"]),
                          "name": component["name"], "version": component.get("version", ""),
                          "description": component.get("description", ""),
                          "license": text or NOASSERTION,
                          "sha256": next((h["content"] for h in component.get("hashes", [])
                                          if h["alg"] == "SHA-256"), "")})
        return found
    raise TrustError("not an SPDX 2.x or CycloneDX JSON document (no spdxVersion or "
                     "bomFormat)")


def summary(doc):
    """A short human summary of an SBOM: counts by kind, licences, the model."""
    components = read_components(doc)
    if doc.get("spdxVersion"):
        title = f"SPDX {doc['spdxVersion']}: {doc['name']} ({doc['creationInfo']['created']})"
    else:
        meta = doc["metadata"]
        title = (f"CycloneDX {doc['specVersion']}: {meta['component']['name']}@"
                 f"{meta['component']['version']} ({meta['timestamp']})")
    lines = [title, "components:"]
    for kind in KINDS:
        count = sum(1 for c in components if c["kind"] == kind)
        if count:
            lines.append(f"  {kind:13} {count}")
    licences = {}
    for component in components:
        for ident in _ids(component["license"]) or [NOASSERTION]:
            licences[ident] = licences.get(ident, 0) + 1
    ranked = sorted(licences.items(), key=lambda item: (-item[1], item[0]))
    lines.append(f"licences: {len(ranked)} distinct; the most declared (components):")
    for ident, count in ranked[:SUMMARY_LICENCES]:
        lines.append(f"  {count:4}  {ident}")
    rest = ranked[SUMMARY_LICENCES:]
    if rest:
        refs = sum(1 for ident, _ in rest if ident.startswith("LicenseRef-"))
        lines.append(f"  ... and {len(rest)} more ({refs} of them LicenseRef-)")
    for component in components:
        if component["kind"] == "model":
            lines.append(f"model: {component['name']} sha256:{component['sha256']}")
            if component["description"]:
                lines.append(f"  {component['description']}")
        if component["kind"] == "model-source":
            lines.append(f"  converted from: {component['name']} {component['version']}"
                         + (f" sha256:{component['sha256']}" if component["sha256"] else ""))
    return "\n".join(lines)


def main(argv=None):
    """Entry point: `generate` (in the image) and `summary`."""
    parser = argparse.ArgumentParser(prog="sbom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write the SBOM (the image's dev stage)")
    generate.add_argument("--inputs", required=True, help="sbom/inputs.json of the context")
    generate.add_argument("--site", default="/opt/modelship/site")
    generate.add_argument("--lock", default="/opt/modelship/locks/runtime.txt")
    generate.add_argument("--wheels", default="/opt/modelship/wheels")
    generate.add_argument("--app", default="/opt/modelship/release/app")
    generate.add_argument("--model-dir", default="/opt/modelship/model")
    generate.add_argument("--out", default="/opt/modelship/release/sbom")
    show = commands.add_parser("summary", help="counts by kind, licences, the model")
    show.add_argument("file", help="an SBOM this tool wrote (SPDX or CycloneDX JSON)")
    args = parser.parse_args(argv)
    try:
        if args.command == "summary":
            path = args.file
            if not os.path.isabs(path):
                path = os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), path)
            with open(path, encoding="utf-8") as text:
                try:
                    doc = json.load(text)
                except ValueError as err:
                    raise TrustError(f"{args.file} is not JSON ({err})") from err
            print(summary(doc))
            return 0
        with open(args.inputs, encoding="utf-8") as text:
            inputs = json.load(text)
        inv = inventory(inputs, site=args.site, lock=args.lock, wheels_dir=args.wheels,
                        app=args.app, model_dir=args.model_dir)
        for path in write(inv, args.out):
            print(f"sbom: wrote {path} ({os.path.getsize(path)} bytes)")
    except (OSError, TrustError) as err:
        print(f"sbom: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
