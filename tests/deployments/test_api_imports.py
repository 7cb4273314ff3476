"""The serving app starts without Prefect: importing it must not import Prefect at all."""

from __future__ import annotations

import subprocess
import sys


def test_the_serving_app_imports_no_prefect() -> None:
    code = ("import sys\n"
            "import tailor.deployments.api.app\n"
            "print(sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]", done.stdout[-3000:]
