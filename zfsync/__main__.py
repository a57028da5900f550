import sys

from zfsync.cli import main

sys.exit(main())
