"""The mixing benchmark's four-domain setting, as a script of its own so that `python -m benchmarks` runs it:

    python benchmarks/mixing_four.py [--mode quick|full] [...]   # = python benchmarks/mixing.py --setting four [...]

benchmarks/mixing.py describes the setting, the methods and what is reported (mixing_four.json).
"""

import sys

from mixing import main

if __name__ == "__main__":
    sys.argv[1:1] = ["--setting", "four"]
    main()
