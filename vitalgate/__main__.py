import sys

from vitalgate.cli import main

sys.exit(main())
