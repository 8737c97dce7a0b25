"""`python -m spectral_jax ...` is the `spectral-jax` command."""

import sys

from .cli import main

sys.exit(main())
