"""`python -m exchange.devstack run|test [pytest args]`: what `make run` and `make test` call."""

from __future__ import annotations

import argparse
import sys

from exchange.devstack.procs import StackError, say


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m exchange.devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the whole exchange locally until Ctrl-C")
    test = sub.add_parser("test", help="bring up PostgreSQL and Redis, then run pytest")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    # argparse's REMAINDER refuses a first pytest argument that looks like an option
    # (`make test PYTEST_ARGS="--durations=20"`): everything after `test` goes to pytest as is.
    pytest_args = argv[1:] if argv[:1] == ["test"] else []
    args = parser.parse_args(argv[:1] if argv[:1] == ["test"] else argv)

    from exchange.devstack import stack

    try:
        if args.command == "run":
            return stack.run()
        return stack.test(pytest_args)
    except StackError as error:
        say(f"ERROR: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
