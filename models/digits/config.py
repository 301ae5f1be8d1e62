"""Settings of the digits pipeline (config.json): parse, validate every field, then use.

All problems of a file are reported together, each naming the field, the value
and what is allowed. Sections: "dataset" (the split), "model", "training"
(hyperparameters and seed) and "gate" (the release gate's absolute floors).
"""

import json


class ConfigError(ValueError):
    """config.json is unusable; the message lists every problem found."""


def _int_at_least(low):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"must be an integer >= {low}"
        return None
    return check


def _number_in(low, high):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not low < value < high:
            return f"must be a number strictly between {low} and {high}"
        return None
    return check


def _fraction_in(low, high):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not low <= value <= high:
            return f"must be a number from {low} to {high}"
        return None
    return check


# section -> field -> check; every field is required and no other is allowed.
FIELDS = {
    "dataset": {
        "split_seed": _int_at_least(0),
        "test_fraction": _number_in(0, 0.5),
        "validation_fraction": _number_in(0, 0.5),
    },
    "model": {
        "hidden_units": _int_at_least(1),
    },
    "training": {
        "batch_size": _int_at_least(1),
        "learning_rate": _number_in(0, 1),
        "max_epochs": _int_at_least(1),
        "patience": _int_at_least(1),
        "seed": _int_at_least(0),
        "weight_decay": _fraction_in(0, 1),
    },
    "gate": {
        "min_quantized_agreement": _fraction_in(0, 1),
        "min_test_accuracy": _fraction_in(0, 1),
    },
}


def parse(obj, source="config"):
    """Validates a decoded config; returns it unchanged or raises ConfigError."""
    problems = []
    if not isinstance(obj, dict):
        raise ConfigError(f"{source}: must be a JSON object with sections {sorted(FIELDS)}")
    for section in sorted(set(obj) - set(FIELDS)):
        problems.append(f"unknown section '{section}' (known: {', '.join(sorted(FIELDS))})")
    for section, fields in FIELDS.items():
        values = obj.get(section)
        if not isinstance(values, dict):
            problems.append(f"section '{section}' is missing or not an object")
            continue
        for name in sorted(set(values) - set(fields)):
            problems.append(f"'{section}.{name}' is not a known setting")
        for name, check in fields.items():
            if name not in values:
                problems.append(f"'{section}.{name}' is missing")
                continue
            why = check(values[name])
            if why:
                problems.append(f"'{section}.{name}' has value {values[name]!r}; it {why}")
    if problems:
        raise ConfigError(f"{source} is invalid:\n  - " + "\n  - ".join(problems))
    return obj


def load(path):
    """Reads and validates config.json."""
    with open(path, encoding="utf-8") as src:
        try:
            obj = json.load(src)
        except ValueError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from err
    return parse(obj, source=str(path))
