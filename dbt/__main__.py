import sys

from dbt.cli import main

sys.exit(main())
