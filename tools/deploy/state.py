"""What a deploy target runs now and ran before, kept in one JSON file.

state.json in the state dir: the stable track, the previous stable digests
(most recent first), the canary, target details (local: ports, container
names, the dockerd root) and an event log. Written atomically (temp file +
rename) so an interrupted command leaves the previous state.
"""

import datetime
import json
import os

from tools.deploy.errors import InputError

FILE = "state.json"
KEEP_PREVIOUS = 10


def default_dir(target):
    """$XDG_CACHE_HOME/modelship/deploy/<target> (~/.cache when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "modelship", "deploy", target)


def now():
    """UTC time as the release history writes it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    """The state file of one target; attributes are plain JSON values."""

    def __init__(self, directory, target):
        self.directory = directory
        self.path = os.path.join(directory, FILE)
        self.data = {"target": target, "stable": None, "canary": None,
                     "previous_stable": [], "details": {}, "events": []}
        if os.path.exists(self.path):
            try:
                with open(self.path, encoding="utf-8") as text:
                    self.data.update(json.load(text))
            except ValueError as err:
                raise InputError(f"state file {self.path} is not valid JSON ({err}); "
                                 "fix or remove it") from err
            if self.data["target"] != target:
                raise InputError(f"state dir {directory} belongs to target "
                                 f"{self.data['target']!r}, not {target!r}: pass --state-dir")

    @property
    def stable(self):
        """{"image", "digest", ...} of the stable track, or None."""
        return self.data["stable"]

    @property
    def canary(self):
        """{"image", "digest", "weight", ...} of the canary track, or None."""
        return self.data["canary"]

    @property
    def details(self):
        """Target-specific settings and runtime facts."""
        return self.data["details"]

    def set_stable(self, track, remember_previous=True):
        """Makes `track` the stable one; the replaced digest goes first in previous_stable."""
        old = self.data["stable"] or {}
        if remember_previous and old and old["digest"] != track["digest"]:
            previous = [p for p in self.data["previous_stable"] if p["digest"] != old["digest"]]
            self.data["previous_stable"] = ([{"image": old["image"], "digest": old["digest"]}]
                                            + previous)[:KEEP_PREVIOUS]
        self.data["stable"] = track

    def pop_previous(self):
        """Takes the most recent previous stable off the list (rollback)."""
        return self.data["previous_stable"].pop(0) if self.data["previous_stable"] else None

    def set_canary(self, track):
        """The canary track, or None."""
        self.data["canary"] = track

    def event(self, name, **fields):
        """Appends one event to the log."""
        self.data["events"].append({"event": name, "when": now(), **fields})
        del self.data["events"][:-200]

    def save(self):
        """Writes state.json atomically."""
        os.makedirs(self.directory, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(self.data, out, indent=1, sort_keys=True)
            out.write("\n")
        os.replace(tmp, self.path)
