"""`npm_tool`: a prebuilt binary shipped inside an npm package, pinned by integrity.

Some tools (buildifier) are published as npm packages that carry their
binaries. This rule asks npm for the package tarball (`npm pack`, so the
registry is whatever npm is configured to use: no host is named here),
checks the tarball against the pinned Subresource Integrity string before
anything is unpacked, and exposes one file of it as `@<name>//:<name>`.
"""

_BUILD = """\
package(default_visibility = ["//visibility:public"])

exports_files(["{name}"])

sh_binary(
    name = "bin",
    srcs = ["{name}"],
)
"""

_VERIFY = """\
import base64, hashlib, sys
algo, want = sys.argv[2].split("-", 1)
with open(sys.argv[1], "rb") as f:
    got = base64.b64encode(hashlib.new(algo, f.read()).digest()).decode()
if got != want:
    sys.exit("integrity mismatch: pinned %s-%s, downloaded %s-%s" % (algo, want, algo, got))
"""

def _npm_tool_impl(rctx):
    spec = "%s@%s" % (rctx.attr.package, rctx.attr.version)
    npm = rctx.which("npm")
    if not npm:
        fail("npm_tool(@%s): npm is not on PATH; run tools/bootstrap." % rctx.name)
    result = rctx.execute([npm, "pack", "--silent", spec], timeout = 600)
    if result.return_code != 0:
        fail("npm_tool(@%s): `npm pack %s` failed: %s" % (rctx.name, spec, result.stderr))
    tarball = result.stdout.strip().splitlines()[-1]
    rctx.file("verify.py", _VERIFY)
    check = rctx.execute(["python3", "verify.py", tarball, rctx.attr.integrity])
    if check.return_code != 0:
        fail(("npm_tool(@{name}): {spec}: {why}. The registry served other bytes than the " +
              "pinned ones; do not use them. If the pin is meant to change, update " +
              "`integrity` in WORKSPACE (`npm view {spec} dist.integrity`).").format(
            name = rctx.name,
            spec = spec,
            why = check.stderr.strip(),
        ))
    rctx.extract(tarball, output = "unpacked")
    rctx.execute(["rm", "-f", tarball, "verify.py"])
    rctx.symlink("unpacked/" + rctx.attr.executable, rctx.name)
    build = _BUILD.format(name = rctx.name)
    for label_name, path in sorted(rctx.attr.files.items()):
        rctx.symlink("unpacked/" + path, label_name)
        build += "\nexports_files([\"%s\"])\n" % label_name
    rctx.file("BUILD.bazel", build)
    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)

npm_tool = repository_rule(
    implementation = _npm_tool_impl,
    attrs = {
        "executable": attr.string(
            mandatory = True,
            doc = "Path of the binary inside the tarball (npm tarballs start with package/).",
        ),
        "files": attr.string_dict(
            doc = "More files of the package to expose: {name in @<name>//: path in the tarball}.",
        ),
        "integrity": attr.string(
            mandatory = True,
            doc = "The package's `dist.integrity` (e.g. sha512-...), checked before unpacking.",
        ),
        "package": attr.string(mandatory = True, doc = "npm package name, e.g. @bazel/buildifier."),
        "version": attr.string(mandatory = True, doc = "Exact version; ranges are refused by npm pack."),
    },
    doc = "A binary from inside an npm package, pinned by the package's integrity hash.",
)
