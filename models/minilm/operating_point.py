"""The operating point: which candidate is released (release/operating_point.json).

    operating_point.py --operating-point release/operating_point.json \\
                       --out minilm.model minilm-fp32.model minilm-int8.model ...

copies the artifact of the candidate the operating point names (found by the
"variant" in each artifact's header) to --out: //models/minilm:model.
"""

import argparse
import json
import shutil
import sys

from inference import artifact, errors


class OperatingPointError(ValueError):
    """release/operating_point.json is unusable or names no built candidate."""


def candidate(path):
    """The candidate name release/operating_point.json chooses."""
    try:
        with open(path, encoding="utf-8") as src:
            settings = json.load(src)
    except (OSError, ValueError) as err:
        raise OperatingPointError(f"cannot read the operating point {path}: {err}") from err
    name = settings.get("candidate") if isinstance(settings, dict) else None
    if not isinstance(name, str) or not name:
        raise OperatingPointError(f"{path}: 'candidate' must name a candidate of "
                                  f"candidates.json, got {name!r}")
    return name


def main(argv=None):
    """Command line entry point; returns the exit status (0 copied, 1 failed, 2 usage)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--operating-point", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("artifacts", nargs="+", help="the candidates' artifact files")
    args = parser.parse_args(argv)
    try:
        wanted = candidate(args.operating_point)
        variants = {}
        for path in args.artifacts:
            variants[artifact.read(path).header["model"]["variant"]] = path
        if wanted not in variants:
            raise OperatingPointError(
                f"{args.operating_point} names candidate {wanted!r}; the built candidates are "
                f"{', '.join(sorted(variants))} (candidates.json, CANDIDATES in BUILD)")
    except (OperatingPointError, errors.ArtifactError) as err:
        print(f"operating_point: error: {err}", file=sys.stderr)
        return 1
    shutil.copyfile(variants[wanted], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
