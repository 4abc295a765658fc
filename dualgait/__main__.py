import sys

from dualgait.cli import main

sys.exit(main())
