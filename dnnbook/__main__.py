import sys

from dnnbook.book.cli import main

sys.exit(main())
