"""Run by `make test` before pytest: installs the Debian chromium the e2e tests drive, and the
colour emoji font the cabinet's screenshots need to show the composer's emoji (and 📎) as a
browser on an operator's desktop does.

Never `playwright install` (it downloads a browser); as root on Debian we apt-get them once.
Where that is impossible the e2e tests skip with a loud reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess

CHROMIUM = "/usr/bin/chromium"
# (what the package installs, the Debian package)
NEEDED = ((CHROMIUM, "chromium"), ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", "fonts-noto-color-emoji"))


def main() -> None:
    missing = [package for path, package in NEEDED if not os.path.exists(path)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"[prepare] {', '.join(missing)} missing and apt-get unavailable: e2e tests may skip")
        return
    print(f"[prepare] installing {', '.join(missing)} for the e2e tests")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=False, env=env
    )
    if result.returncode != 0:
        print(f"[prepare] apt-get install {' '.join(missing)} failed: e2e tests may skip")


if __name__ == "__main__":
    main()
