"""What the public front door routes: the service's API, and nothing else.

/metrics (and any route added later outside these paths) is for the metric
gate and for Prometheus, which read each container or pod directly; the
Ingress (kubernetes) and the private nginx (local) answer 404 for it. An
allow-list rather than a deny rule: path tricks (`//metrics`, `/v2/../metrics`,
percent-encoding) are normalised by nginx before it matches a location, and
whatever is not listed stays private by default.
"""

# (Kubernetes Ingress pathType, path). Prefix matches whole path elements:
# /v2 matches /v2 and /v2/models/..., not /v2x.
PATHS = (
    ("Prefix", "/v1"),
    ("Prefix", "/v2"),
    ("Exact", "/openapi.json"),
    ("Exact", "/docs"),
)


def nginx_locations(body):
    """nginx `location` blocks for PATHS, each with `body` (lines) inside."""
    blocks = []
    for kind, path in PATHS:
        matches = [f"= {path}"] + ([f"{path}/"] if kind == "Prefix" else [])
        for match in matches:
            blocks.append(f"        location {match} {{\n" +
                          "".join(f"            {line}\n" for line in body) + "        }")
    return "\n".join(blocks)
