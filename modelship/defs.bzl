"""modelship's rules: the front door. Load from here, never from private/.

    load("@modelship//modelship:defs.bzl", "model_image")

    model_image(
        name = "image",
        model = ":model",
        handler = "services.iris.handler:IrisHandler",
        service = "//services/iris:server",
        contract = "//services/iris:openapi.json",
        release = "release/current.json",
        image_name = "modelship-iris",
        served_name = "iris",
        size_budget_mb = 60,
        release_gate = "models.iris.release_gate:judge",
        release_gate_library = "//models/iris:release_gate_lib",
        operating_point = "//models/iris:release/operating_point.json",
        requests = ":release_requests",
        task_endpoint = "/v1/predict",           # optional, with task_schema
        task_schema = "results.schema.json",
    )

gives, in the package that declares it:

    bazel build //<pkg>:image.spec   the image spec: everything particular to
                                     this image, as JSON (tools/image/build.py
                                     reads it)
    bazel run //<pkg>:image          builds the lint, test and production stages
                                     and writes dist/<image_name>.oci.tar
    bazel run //<pkg>:image.repro    two clean builds must give the same digest
    bazel run //<pkg>:image.bench    build times, layers a change rebuilds
    bazel run //<pkg>:image.release -- publish|validate|promote|rollback|history|gate
                                     the release tool bound to this image
                                     (tools/release/README.md)

This file only re-exports: the machinery is in private/ and may change
without notice. Every argument is documented in private/image.bzl
(`model_image`).
"""

load("//modelship/private:image.bzl", _model_image = "model_image")

model_image = _model_image
