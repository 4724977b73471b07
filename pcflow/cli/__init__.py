"""The `pcflow` command line: one module per subcommand group, `main(argv) -> int` turning errors into exit codes.

`main` builds the parser, `arguments` holds the argument groups the subcommands share and `common` what they make of
them; `reconstruct` (reconstruct, demo), `clean` (denoise, fit), `mesh`, `view` (view, render) and `info` each
register their subcommands with `set_defaults(func=...)` and import what they need (torch included) only when run,
so that `pcflow --help` stays fast.
"""

from .common import EXIT_FAILURE
from .common import fit_options as _fit_options
from .main import _FULL_COLLECTION_AFTER, build_parser, main, run
from .reconstruct import _summary, demo_asset, fresh_folder

__all__ = ["EXIT_FAILURE", "build_parser", "demo_asset", "fresh_folder", "main", "run"]
