"""A private GnuPG keyring for containers' simple signing (tools/trust/simplesigning.py).

`Keyring` is a temporary GNUPGHOME (mode 0700) that lives for one `with`
block: the signing key is imported into it, skopeo signs with it, and the
folder (with the gpg-agent that served it) is gone afterwards. Nothing is read
from, or left in, the user's own ~/.gnupg.

Passphrases never go on a command line or into an environment: each is
written to a file (mode 0600) inside the private folder, and gpg and skopeo
are given its path (`--passphrase-file`, `--sign-passphrase-file`).
"""

import os
import re
import shutil
import subprocess
import tempfile

from tools.trust.errors import KeyFileError, TrustError

GPG = "gpg"
GPGCONF = "gpgconf"
# gpg never waits for a terminal here (--batch, loopback pinentry); the bound is
# for a wedged gpg-agent.
TIMEOUT_S = 60

_FPR = re.compile(r"^[0-9A-F]{40}$")


class Keyring:
    """A private, temporary GNUPGHOME (context manager).

        with Keyring() as keyring:
            fpr = keyring.import_secret_key(armored, passphrase)
            simplesigning.sign(..., fingerprint=fpr, keyring=keyring, ...)

    `home` is the folder; `env()` the environment gpg and skopeo need to use it.
    """

    def __init__(self):
        self.home = None
        self._passphrases = {}  # fingerprint -> passphrase file (in `home`)

    # --- lifetime ---------------------------------------------------------------

    def __enter__(self):
        self.home = tempfile.mkdtemp(prefix="modelship-gnupg-")  # mode 0700
        os.chmod(self.home, 0o700)
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Stops the keyring's gpg-agent and removes the folder (keys, passphrase files)."""
        if self.home is None:
            return
        try:
            self._kill_agent()
        finally:  # the keys and passphrase files go whatever happened to the agent
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def _kill_agent(self):
        subprocess.run([GPGCONF, "--homedir", self.home, "--kill", "gpg-agent"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=self.env(), check=False, timeout=TIMEOUT_S)

    def env(self):
        """The environment for gpg and skopeo: the caller's, with GNUPGHOME set to this
        keyring (skopeo's gpgme reads GNUPGHOME; it has no flag for it)."""
        self._check_open()
        return dict(os.environ, GNUPGHOME=self.home)

    def _check_open(self):
        if self.home is None:
            raise TrustError("the GPG keyring is not open: use `with Keyring() as keyring:`")

    # --- gpg --------------------------------------------------------------------

    def _gpg(self, *args, stdin=None, passphrase_file=None):
        self._check_open()
        argv = [GPG, "--homedir", self.home, "--batch", "--no-tty", "--status-fd", "2",
                "--pinentry-mode", "loopback"]
        if passphrase_file:
            argv += ["--passphrase-file", passphrase_file]
        try:
            proc = subprocess.run(argv + list(args), input=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=self.env(), check=False,
                                  timeout=TIMEOUT_S)
        except FileNotFoundError as err:
            raise TrustError("gpg is not installed (Debian package gnupg): run tools/bootstrap"
                             ) from err
        return proc

    def _passphrase_file(self, passphrase):
        fd, path = tempfile.mkstemp(prefix="passphrase-", dir=self.home)  # mode 0600
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(passphrase)
        return path

    def passphrase_file(self, fingerprint):
        """Path of the file holding `fingerprint`'s passphrase, or None (no passphrase)."""
        return self._passphrases.get(fingerprint)

    def import_secret_key(self, armored, passphrase=None):
        """Imports an ASCII-armored secret key; returns its fingerprint (40 hex digits).

        The passphrase is checked at once (a test signature), so a wrong one is
        refused here, with KeyFileError, and not in the middle of a release."""
        fprs = self._import(armored, what="secret key")
        if len(fprs) != 1:
            raise KeyFileError(f"the armored secret key holds {len(fprs)} keys; give exactly "
                               f"one (gpg --armor --export-secret-keys FINGERPRINT)")
        fpr = fprs[0]
        if self._gpg("--list-secret-keys", fpr).returncode != 0:
            raise KeyFileError(f"key {fpr} was imported without its secret part: export it "
                               f"with gpg --armor --export-secret-keys {fpr}")
        pfile = self._passphrase_file(passphrase) if passphrase else None
        # The signature goes to our pipe. Never `--output /dev/null`: gpg deletes its
        # output file when it fails (a wrong passphrase would remove /dev/null).
        proc = self._gpg("--local-user", fpr, "--sign",
                         stdin=b"modelship passphrase check", passphrase_file=pfile)
        if proc.returncode != 0:
            status = proc.stderr.decode(errors="replace")
            if "BAD_PASSPHRASE" in status or "MISSING_PASSPHRASE" in status \
                    or "Bad passphrase" in status or "No passphrase" in status:
                reason = "wrong passphrase" if passphrase else "the key needs a passphrase"
                raise KeyFileError(f"cannot sign with GPG key {fpr}: {reason}")
            raise KeyFileError(f"cannot sign with GPG key {fpr}: {_last_line(status)}")
        # Forget the passphrase the agent cached for that check: every later use
        # (skopeo) must be given it, as it would be in a fresh job.
        self._kill_agent()
        if pfile:
            self._passphrases[fpr] = pfile
        return fpr

    def import_public_key(self, armored):
        """Imports an ASCII-armored public key; returns its fingerprint (the first, if
        the data holds several: import_public_keys returns them all)."""
        return self.import_public_keys(armored)[0]

    def import_public_keys(self, armored):
        """Imports ASCII-armored public keys (one or more, concatenated, as a key
        rotation's policy keyPath holds them); returns their fingerprints."""
        return self._import(armored, what="public key")

    def _import(self, armored, what):
        if isinstance(armored, str):
            armored = armored.encode()
        proc = self._gpg("--import", stdin=armored)
        status = proc.stderr.decode(errors="replace")
        fprs = []
        for line in status.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[:2] == ["[GNUPG:]", "IMPORT_OK"] \
                    and parts[3] not in fprs:
                fprs.append(parts[3])
        if not fprs:
            raise KeyFileError(f"not an OpenPGP {what} (gpg --import: {_last_line(status)}); "
                               f"export one with gpg --armor --export"
                               f"{'-secret-keys' if what == 'secret key' else ''} FINGERPRINT")
        return fprs

    def generate(self, name_email, passphrase=None):
        """Makes a new ed25519 signing key that never expires; returns its fingerprint.
        For tests and the documentation's examples: real keys are made once, offline."""
        pfile = self._passphrase_file(passphrase or "")
        proc = self._gpg("--quick-gen-key", name_email, "ed25519", "sign", "never",
                         passphrase_file=pfile)
        status = proc.stderr.decode(errors="replace")
        match = re.search(r"\[GNUPG:\] KEY_CREATED \w+ ([0-9A-F]{40})", status)
        if proc.returncode != 0 or not match:
            raise TrustError(f"gpg could not make a key for {name_email!r}: "
                             f"{_last_line(status)}")
        fpr = match.group(1)
        if passphrase:
            self._passphrases[fpr] = pfile
        else:
            os.unlink(pfile)
        return fpr

    def export_public(self, fingerprint):
        """The ASCII-armored public key of `fingerprint` (bytes)."""
        if not _FPR.match(fingerprint or ""):
            raise TrustError(f"not a GPG fingerprint (40 hex digits, upper case): "
                             f"{fingerprint!r}")
        proc = self._gpg("--armor", "--export", fingerprint)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise KeyFileError(f"no key {fingerprint} in the keyring")
        return proc.stdout

    def export_secret(self, fingerprint):
        """The ASCII-armored secret key of `fingerprint` (bytes), still protected by its
        passphrase. For tests and for making the CI variable once."""
        proc = self._gpg("--armor", "--export-secret-keys", fingerprint,
                         passphrase_file=self._passphrases.get(fingerprint))
        if proc.returncode != 0 or not proc.stdout.strip():
            raise KeyFileError(f"no secret key {fingerprint} in the keyring")
        return proc.stdout

    def decode(self, signature):
        """The payload of an OpenPGP signed message (bytes), whoever signed it and whether
        or not it verifies; None when it is not OpenPGP data at all. Only for reading the
        claimed identity: the verdict comes from skopeo."""
        proc = self._gpg("--decrypt", stdin=signature)
        return proc.stdout or None


def _last_line(text):
    lines = [line for line in text.strip().splitlines()
             if line.strip() and not line.startswith("[GNUPG:]")]
    return lines[-1][:300] if lines else "no output"
