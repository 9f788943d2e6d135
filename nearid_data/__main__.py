import sys

from nearid_data.cli import main

sys.exit(main())
