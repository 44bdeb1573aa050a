"""What every tutorial shares: its CHECK lines and its closing summary."""

import argparse
import json
import pathlib
import time


def parser(doc, default_out, quick_help):
    """The options every tutorial takes: `--quick` and `--out DIR`."""
    result = argparse.ArgumentParser(description=doc.splitlines()[0])
    result.add_argument("--quick", action="store_true", help=quick_help)
    result.add_argument(
        "--out",
        type=pathlib.Path,
        default=default_out,
        help=f"output directory (default: {default_out})",
    )
    return result


class Checks:
    """Collects `CHECK name: PASS/FAIL` lines."""

    def __init__(self):
        self.results = {}

    def __call__(self, name, ok, detail):
        self.results[name] = bool(ok)
        print(f"CHECK {name}: {'PASS' if ok else 'FAIL'}  ({detail})")

    @property
    def all_passed(self):
        """Every check passed, and there was at least one."""
        return bool(self.results) and all(self.results.values())


def finish(out, summary, checks, start):
    """Write `summary.json` to `out`, print the verdict, and return the
    exit status (1 if a check failed)."""
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'summary.json'}")
    verdict = "PASS" if checks.all_passed else "FAIL"
    print(f"ALL CHECKS: {verdict}  ({time.time() - start:.0f} s)")
    return 0 if checks.all_passed else 1
