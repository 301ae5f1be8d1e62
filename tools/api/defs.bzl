"""Rules that turn the checked-in OpenAPI document into products.

    load("//tools/api:defs.bzl", "api_client_wheel", "api_docs")

    api_docs(
        name = "docs",                       # docs.html and docs.html.gz
        openapi = "//services/iris:openapi.json",
    )

    api_client_wheel(
        name = "client",                     # <distribution>-<version>-py3-none-any.whl
        openapi = "//services/iris:openapi.json",
        package = "iris_client",
        distribution = "modelship-iris-client",
        version = API_VERSION,
    )

Both run inside actions with no network: the generators are pinned (Redoc's
bundle by npm integrity, openapi-python-client by the pypi_api lock), and the
outputs are the same bytes on every build (tools/api/README.md).
"""

def _api_docs_impl(ctx):
    page = ctx.actions.declare_file(ctx.attr.name + ".html")
    packed = ctx.actions.declare_file(ctx.attr.name + ".html.gz")
    args = ctx.actions.args()
    args.add("--openapi", ctx.file.openapi)
    args.add("--redoc", ctx.file._redoc)
    args.add("--license", ctx.file._redoc_license)
    args.add("--html", page)
    args.add("--gzip", packed)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = [ctx.file.openapi, ctx.file._redoc, ctx.file._redoc_license],
        outputs = [page, packed],
        env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
        mnemonic = "ApiDocs",
        progress_message = "Rendering the API reference of %s" % ctx.file.openapi.short_path,
    )
    return [
        DefaultInfo(files = depset([page, packed]), runfiles = ctx.runfiles(files = [packed])),
        OutputGroupInfo(html = depset([page]), gzip = depset([packed])),
    ]

api_docs = rule(
    implementation = _api_docs_impl,
    doc = """The HTML reference of an OpenAPI document: `<name>.html`, one self-contained
page (Redoc and the document inlined, nothing loaded at view time), and
`<name>.html.gz`, the same page compressed, which is what a server ships and
sends (runfiles hold only the .gz, to keep images small).""",
    attrs = {
        "openapi": attr.label(
            allow_single_file = [".json"],
            mandatory = True,
            doc = "The OpenAPI 3 document (JSON) to render.",
        ),
        "_redoc": attr.label(default = Label("@redoc//:redoc"), allow_single_file = True),
        "_redoc_license": attr.label(
            default = Label("@redoc//:LICENSE.txt"),
            allow_single_file = True,
        ),
        "_tool": attr.label(
            default = Label("//tools/api:docs"),
            executable = True,
            cfg = "exec",
        ),
    },
)

def _api_client_wheel_impl(ctx):
    name = "%s-%s-py3-none-any.whl" % (ctx.attr.distribution.replace("-", "_"), ctx.attr.version)
    wheel = ctx.actions.declare_file(name)
    args = ctx.actions.args()
    args.add("--openapi", ctx.file.openapi)
    args.add("--package", ctx.attr.package)
    args.add("--distribution", ctx.attr.distribution)
    args.add("--version", ctx.attr.version)
    args.add("--out", wheel)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = [ctx.file.openapi],
        outputs = [wheel],
        env = {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "SOURCE_DATE_EPOCH": "315532800",
        },
        mnemonic = "ApiClientWheel",
        progress_message = "Generating the client SDK of %s" % ctx.file.openapi.short_path,
    )
    return [DefaultInfo(files = depset([wheel]), runfiles = ctx.runfiles(files = [wheel]))]

api_client_wheel = rule(
    implementation = _api_client_wheel_impl,
    doc = """A Python client SDK generated from an OpenAPI document (openapi-python-client),
packed as a reproducible pure-Python wheel whose version is the API version.""",
    attrs = {
        "distribution": attr.string(
            mandatory = True,
            doc = "Distribution name of the wheel, e.g. modelship-iris-client.",
        ),
        "openapi": attr.label(
            allow_single_file = [".json"],
            mandatory = True,
            doc = "The OpenAPI 3 document the client is generated from.",
        ),
        "package": attr.string(mandatory = True, doc = "Import name, e.g. iris_client."),
        "version": attr.string(
            mandatory = True,
            doc = "The wheel's version. It must equal the document's info.version (the " +
                  "build fails otherwise): file names are fixed before the document is read.",
        ),
        "_tool": attr.label(
            default = Label("//tools/api:sdk"),
            executable = True,
            cfg = "exec",
        ),
    },
)
