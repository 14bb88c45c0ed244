"""Run by `make test` before pytest: installs the Debian chromium the e2e tests drive.

Never `playwright install` (it downloads a browser); as root on Debian we apt-get it once.
Where that is impossible the e2e tests skip with a loud reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("[prepare] chromium missing and apt-get unavailable: e2e tests will skip")
        return
    print("[prepare] installing Debian chromium for the e2e tests")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=False, env=env
    )
    if result.returncode != 0:
        print("[prepare] apt-get install chromium failed: e2e tests will skip")


if __name__ == "__main__":
    main()
