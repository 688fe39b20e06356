import sys

from synclipmae.cli import main

sys.exit(main())
