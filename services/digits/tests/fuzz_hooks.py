"""schemathesis hooks of the fuzz test (loaded through SCHEMATHESIS_HOOKS).

The OpenAPI document says everything about an infer request that JSON Schema
can say; one rule it cannot: `data` holds as many values as the product of
`shape`, flat or nested exactly as the shape (N is free, so no finite schema
ties the two). Before a schema-valid (positive) infer case is sent, its shape
is made to agree with its generated data, keeping every generated value; when
flat data is not a whole number of images, it is cut to one. Negative cases
are sent as generated, so a wrong shape still has to be refused.
"""

import schemathesis

ROW = 64
IMAGE = (8, 8)


@schemathesis.hook
def before_call(context, case, kwargs):
    """Fits a positive infer case's shape to its data (the rule beyond JSON Schema)."""
    del context, kwargs
    meta = case.meta
    if not case.operation.path.endswith("/infer") or meta is None \
            or not meta.generation.mode.is_positive:
        return
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return
    for tensor in body["inputs"]:
        if isinstance(tensor, dict):
            _fit(tensor)


def _fit(tensor):
    data, shape = tensor.get("data"), tensor.get("shape")
    if not isinstance(data, list) or not data or not isinstance(shape, list):
        return
    if isinstance(data[0], list):  # nested rows: the shape is the data's own
        first = data[0]
        tensor["shape"] = [len(data)] + ([len(first), len(first[0])]
                                         if first and isinstance(first[0], list)
                                         else [len(first)])
        return
    rows = max(1, len(data) // ROW)
    del data[rows * ROW:]
    tensor["shape"] = [rows] + (list(IMAGE) if len(shape) == 3 else [ROW])
