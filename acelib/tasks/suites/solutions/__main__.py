"""`python -m acelib.tasks.suites.solutions <id> [--compact]`: print a competition's reference solution (or its
compact baseline)."""
import argparse

from acelib.tasks.suites.solutions import compact_baseline, render_reference

parser = argparse.ArgumentParser(prog="python -m acelib.tasks.suites.solutions", description=__doc__)
parser.add_argument("id", help="competition id, e.g. spooky-mini (see `python -m acelib.tasks list`)")
parser.add_argument("--compact", action="store_true", help="print the compact baseline instead")
args = parser.parse_args()
print(compact_baseline(args.id) if args.compact else render_reference(args.id), end="")
