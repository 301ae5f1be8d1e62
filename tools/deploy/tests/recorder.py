"""A stand-in for the Kubectl seam that records every call (no cluster here)."""


class RecordingKubectl:
    """Records apply/rollout_status/delete as tuples; applies keep the objects."""

    def __init__(self):
        self.calls = []

    def apply(self, objects):
        """Records ("apply", [(kind, name), ...]) and keeps the objects."""
        self.calls.append(("apply", [(o["kind"], o["metadata"]["name"]) for o in objects],
                           objects))

    def rollout_status(self, name, timeout_s):
        """Records ("rollout", name)."""
        del timeout_s
        self.calls.append(("rollout", name))

    def delete(self, kind, name):
        """Records ("delete", kind, name)."""
        self.calls.append(("delete", kind, name))

    def sequence(self):
        """The calls without the applied objects."""
        return [call[:2] if call[0] == "apply" else call for call in self.calls]

    def applied(self):
        """Every object applied, last version per (kind, name)."""
        objects = {}
        for call in self.calls:
            if call[0] == "apply":
                for obj in call[2]:
                    objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return objects
