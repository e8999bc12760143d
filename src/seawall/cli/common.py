"""What every ``seawall`` command shares: the common arguments and the configuration they name."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seawall import logs
from seawall.config import Config, load_config, state_url
from seawall.errors import SeawallError


def common_arguments() -> argparse.ArgumentParser:
    """The parent parser of the commands: ``--config``, ``--state`` and ``-v``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="a seawall.toml file")
    common.add_argument(
        "--state", metavar="DIR", help="state dir (default: $SEAWALL_STATE, else ./var)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return common


def config_from(args: argparse.Namespace, *, state: bool = True) -> Config:
    """The configuration ``--config`` and ``--state`` name, its ``[logging]`` put in force;
    with ``state`` (a command that uses the state), a state dir that does not exist is
    created with a notice (:func:`ensure_state`)."""
    config = load_config(Path(args.config) if args.config else None, state_dir=args.state)
    logs.configure(config.logging, verbose=args.verbose)
    if state:
        ensure_state(config)
    return config


def ensure_state(config: Config) -> None:
    """Create a missing state dir, saying so in one line on stderr: a mistyped ``--state``
    would otherwise become a new, empty state in silence (a classifier that knows nothing,
    no campaigns, no reputation).  A Redis state is left alone."""
    if state_url(config) is not None:
        return
    path = Path(config.state_dir)
    if path.is_dir():
        return
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        raise SeawallError(f"the state dir {path} is not a directory") from None
    except OSError as exc:
        raise SeawallError(f"cannot create the state dir {path}: {exc.strerror}") from None
    print(
        f"seawall: the state dir {path} did not exist; created it, a new and empty state",
        file=sys.stderr,
    )
