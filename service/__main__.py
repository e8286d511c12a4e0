"""``python -m service`` runs the ``dscsa`` command line."""

import sys

from service.cli import main

sys.exit(main())
