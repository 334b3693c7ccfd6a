"""``python -m azext_confcom.dmverity`` runs our dmverity-vhd."""

import sys

from .cli import main

sys.exit(main())
