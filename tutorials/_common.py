"""What every tutorial shares: its CHECK lines and its closing summary."""

import json
import time


class Checks:
    """Collects `CHECK name: PASS/FAIL` lines."""

    def __init__(self):
        self.results = {}

    def __call__(self, name, ok, detail):
        self.results[name] = bool(ok)
        print(f"CHECK {name}: {'PASS' if ok else 'FAIL'}  ({detail})")

    @property
    def all_passed(self):
        return all(self.results.values())


def finish(out, summary, checks, start):
    """Write `summary.json` to `out`, print the verdict, and return the
    exit status (1 if a check failed)."""
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'summary.json'}")
    verdict = "PASS" if checks.all_passed else "FAIL"
    print(f"ALL CHECKS: {verdict}  ({time.time() - start:.0f} s)")
    return 0 if checks.all_passed else 1
