"""The commands every target shares: the bookkeeping of the stable and canary tracks.

A target (local, kubernetes) only knows how to run a track, set the split
and stop a track (the `_` methods); what becomes stable, what is remembered
as the previous stable and what a rollback returns to is decided here, the
same way for both.
"""

from tools.deploy import gate
from tools.deploy import history
from tools.deploy import images
from tools.deploy.errors import InputError

TRACKS = ("stable", "canary")


class Target:
    """Base of the targets. `state` is a state.State, `options` the parsed CLI options."""

    name = "?"

    def __init__(self, state, options, verify=None):
        self.state = state
        self.options = options
        # Image -> None, raising unless the image's signatures verify (verify.py);
        # called before any track starts an image.
        self.verify = verify or (lambda image: None)
        given = getattr(options, "name", None)
        if given is not None:
            images.check_name(given)
            recorded = state.details.get("name")
            if recorded and recorded != given and (state.stable or state.canary):
                # Another name would start a second set of objects beside the
                # running ones, which nothing would stop or route to again.
                raise InputError(f"--name {given}: the tracks of {state.directory} run as "
                                 f"{recorded!r}; pass --name {recorded} (or none), or use "
                                 "another --state-dir")
            state.details["name"] = given

    def app_name(self, image=None):
        """The name of the tracks' objects and containers (`NAME-stable`, `NAME-canary`).

        --name when given, else the one recorded in the state dir, else derived from
        `image` (its repository's last path component) and recorded: it stays fixed
        for the state dir, whatever repository a later image comes from.
        """
        name = self.state.details.get("name")
        if not name:
            if image is None:
                raise InputError("nothing deployed yet, so no name is known: pass --name NAME "
                                 "or deploy an image first")
            name = images.default_name(image)
            self.state.details["name"] = name
        return name

    # --- what a target implements ------------------------------------------

    def _start_stable(self, image, archive):
        """Runs `image` as the stable track with all traffic; returns its track dict."""
        raise NotImplementedError

    def _start_canary(self, image, weight, archive):
        """Runs `image` as the canary track at `weight` %; returns its track dict."""
        raise NotImplementedError

    def _set_weight(self, weight):
        """Sends `weight` % of requests to the running canary."""
        raise NotImplementedError

    def _promote(self):
        """The running canary takes all traffic as the stable track; the old stable stops."""
        raise NotImplementedError

    def _drop_canary(self):
        """All traffic to stable at once, then the canary stops; returns when traffic left."""
        raise NotImplementedError

    def metrics_urls(self):
        """{"stable": [url, ...], "canary": [url, ...]}: each instance's /metrics."""
        raise NotImplementedError

    def read_metrics(self):
        """{track: {instance: gate.Snapshot}}: one reading of every instance of each track."""
        return {track: {url: gate.scrape(url) for url in urls}
                for track, urls in self.metrics_urls().items()}

    def details(self):
        """Target-specific facts for `status`."""
        return {}

    def down(self):
        """Stops everything the target runs (local only)."""
        raise InputError(f"`down` is for the local target; {self.name} has nothing to stop")

    # --- the commands -----------------------------------------------------------

    def deploy(self, image, archive=None, remember=True):
        """`deploy`: `image` becomes the stable track; a canary is removed."""
        self.verify(image)
        track = self._start_stable(image, archive)
        old = self.state.stable
        self.state.set_stable(track, remember_previous=remember)
        self.state.set_canary(None)
        self.state.event("deploy", digest=image.digest, image=image.reference,
                         replaced=old and old["digest"])
        self.state.save()
        return track

    def canary(self, image, weight, archive=None):
        """`canary`: start or replace the canary (image given) or change its weight."""
        if not 0 <= weight <= 100:
            raise InputError(f"--weight {weight}: give a whole number from 0 to 100")
        if self.state.stable is None:
            raise InputError("no stable track yet: run `deploy --image REF@sha256:...` first")
        current = self.state.canary
        if image is None:
            if current is None:
                raise InputError("no canary is running: give --image REF@sha256:...")
            self._set_weight(weight)
            current["weight"] = weight
        elif current is not None and current["digest"] == image.digest:
            self._set_weight(weight)
            current["weight"] = weight
        else:
            self.verify(image)
            current = self._start_canary(image, weight, archive)
        self.state.set_canary(current)
        self.state.event("canary", digest=current["digest"], weight=weight)
        self.state.save()
        return current

    def promote(self):
        """`promote`: the canary becomes stable."""
        canary = self.state.canary
        if canary is None:
            raise InputError("no canary to promote: run `canary --image ... --weight N` first")
        track = self._promote()
        self.state.set_stable(track)
        self.state.set_canary(None)
        self.state.event("promote", digest=track["digest"])
        self.state.save()
        return track

    def abort_canary(self, reason):
        """Traffic back to stable, canary stopped (a failed gate or a manual rollback)."""
        canary = self.state.canary
        traffic_back = self._drop_canary()
        self.state.set_canary(None)
        self.state.event("rollback", digest=self.state.stable["digest"],
                         aborted=canary["digest"], reason=reason)
        self.state.save()
        return traffic_back

    def rollback(self, release_history=None):
        """`rollback`: drop a running canary, else return stable to the previous stable."""
        if self.state.canary is not None:
            aborted = self.state.canary
            self.abort_canary("manual rollback")
            return {"rolled_back": "canary", "aborted": aborted["digest"],
                    "stable": self.state.stable["digest"]}
        if self.state.stable is None:
            raise InputError("nothing deployed yet: nothing to roll back")
        current = self.state.stable["digest"]
        if release_history:
            record = history.previous_stable(history.read(release_history))
            # Only the digest comes from the history: the repository is the one
            # the stable track runs from, so a rewritten history cannot point
            # production at an image somewhere else.
            repository = images.parse(self.state.stable["image"], what="stable track").repository
            target = images.parse(f"{repository}@{record.digest}", what="release history record")
            if target.digest == current:
                raise InputError(f"the release history's previous stable {target.digest} is "
                                 "already the stable track")
            source = "release history"
            self.state.data["previous_stable"] = [
                p for p in self.state.data["previous_stable"] if p["digest"] != target.digest]
        else:
            previous = self.state.pop_previous()
            if previous is None:
                raise InputError("no previous stable digest recorded: pass --release-history "
                                 "FILE (from `bazel run //tools/release -- history --json`)")
            target = images.parse(previous["image"], what="recorded previous stable")
            source = "deploy state"
        self.deploy(target, remember=False)
        self.state.event("rollback", digest=target.digest, replaced=current, source=source)
        self.state.save()
        return {"rolled_back": "stable", "stable": target.digest, "was": current,
                "source": source}

    def status(self):
        """`status`: tracks, digests, weights."""
        stable, canary = self.state.stable, self.state.canary
        weight = canary["weight"] if canary else 0
        tracks = {"stable": None, "canary": None}
        if stable:
            tracks["stable"] = {"image": stable["image"], "digest": stable["digest"],
                                "weight": 100 - weight}
        if canary:
            tracks["canary"] = {"image": canary["image"], "digest": canary["digest"],
                                "weight": weight}
        return {"target": self.name, "state_dir": self.state.directory, "tracks": tracks,
                "previous_stable": [p["digest"] for p in self.state.data["previous_stable"]],
                "details": self.details()}
