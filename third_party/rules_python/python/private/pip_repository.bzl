"""Repository rule behind `pip_parse`: installs a hashed lock, wheels only."""

def _pip_repository_impl(rctx):
    python = rctx.attr.python_interpreter
    if "/" not in python:
        found = rctx.which(python)
        if not found:
            fail("pip_parse(@%s): python_interpreter %r is not on PATH." % (rctx.name, python))
        python = str(found)
    lock = rctx.path(rctx.attr.requirements_lock)
    installer = rctx.path(rctx.attr._installer)
    args = [
        python,
        "-I",
        str(installer),
        "--repo",
        rctx.name,
        "--lock",
        str(lock),
        "--lock-label",
        str(rctx.attr.requirements_lock),
        "--out",
        str(rctx.path(".")),
    ]
    for extra in rctx.attr.extra_pip_args:
        args.append("--pip-arg=" + extra)
    result = rctx.execute(
        args,
        timeout = rctx.attr.timeout,
        quiet = rctx.attr.quiet,
        environment = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONHASHSEED": "0"},
    )
    if result.return_code != 0:
        fail("pip_parse(@%s) failed:\n%s" % (rctx.name, result.stderr or result.stdout))

pip_repository = repository_rule(
    implementation = _pip_repository_impl,
    attrs = {
        "extra_pip_args": attr.string_list(
            doc = "Extra arguments for `pip install` (the safety flags cannot be removed).",
        ),
        "python_interpreter": attr.string(
            default = "python3",
            doc = "Interpreter that runs pip: the wheels are chosen for it.",
        ),
        "quiet": attr.bool(default = True),
        "requirements_lock": attr.label(
            allow_single_file = True,
            mandatory = True,
            doc = "A lock compiled by pip-compile --generate-hashes.",
        ),
        "timeout": attr.int(default = 1200),
        "_installer": attr.label(default = Label("//python/private:pip_install.py")),
    },
    environ = ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT"],
)
