import sys

from dnnbook.cli import main

sys.exit(main())
