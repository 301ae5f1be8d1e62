"""The release keys a team keeps in its CI/CD settings, made for a test run.

- a cosign-format key pair (file variables MODELSHIP_COSIGN_KEY and
  MODELSHIP_COSIGN_PUBLIC_KEY, masked MODELSHIP_COSIGN_PASSWORD);
- a GPG key (MODELSHIP_GPG_KEY, MODELSHIP_GPG_PASSPHRASE, MODELSHIP_GPG_PUBLIC_KEY);
- the lookaside storage of GPG signatures: the folder publish writes into
  (MODELSHIP_LOOKASIDE_STAGING), served by a real nginx at MODELSHIP_LOOKASIDE,
  as a team's static web server would serve it (docs/lookaside.md).

The jobs get them as a GitLab runner passes variables: in their environment.
"""

import os
import secrets

from tools.trust import keys, simplesigning
from tools.trust.tests import lookaside_server


class ReleaseKeys:
    """Keys as files under `root`, and the lookaside server; stop() it afterwards."""

    def __init__(self, root):
        os.makedirs(root, exist_ok=True)
        self.root = root
        self.cosign_password = secrets.token_urlsafe(16)
        self.gpg_passphrase = secrets.token_urlsafe(16)
        private, public = keys.generate_key_pair(self.cosign_password.encode())
        self.files = {}
        for name, data in (("cosign.key", private), ("cosign.pub", public)):
            self.files[name] = self._write(name, data)
        with simplesigning.Keyring() as ring:
            fingerprint = ring.generate("modelship release tests <release@modelship.invalid>",
                                        passphrase=self.gpg_passphrase)
            self.files["gpg.key"] = self._write("gpg.key", ring.export_secret(fingerprint))
            self.files["gpg.pub"] = self._write("gpg.pub", ring.export_public(fingerprint))
        self.staging = os.path.join(root, "lookaside")
        self.lookaside = lookaside_server.Lookaside(os.path.join(root, "nginx"),
                                                    self.staging).start()

    def _write(self, name, data):
        path = os.path.join(self.root, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return path

    def env(self):
        """The CI/CD variables of the project (signing and verifying)."""
        return {
            "MODELSHIP_COSIGN_KEY": self.files["cosign.key"],
            "MODELSHIP_COSIGN_PASSWORD": self.cosign_password,
            "MODELSHIP_COSIGN_PUBLIC_KEY": self.files["cosign.pub"],
            "MODELSHIP_GPG_KEY": self.files["gpg.key"],
            "MODELSHIP_GPG_PASSPHRASE": self.gpg_passphrase,
            "MODELSHIP_GPG_PUBLIC_KEY": self.files["gpg.pub"],
            "MODELSHIP_LOOKASIDE": self.lookaside.url,
            "MODELSHIP_LOOKASIDE_STAGING": self.staging,
        }

    def secrets(self):
        """What must never appear in a job log."""
        return [self.cosign_password, self.gpg_passphrase]

    def stop(self):
        """Stops the lookaside server."""
        self.lookaside.stop()
