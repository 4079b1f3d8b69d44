"""persona-vaccine's command line from a source checkout: `python launch.py COMMAND ...`.

The same as the installed `persona-vaccine COMMAND ...`; the commands live in `persona_vaccine/cli.py`.
Multi-process: `accelerate launch --config_file recipes/accelerate_configs/X.yaml launch.py COMMAND ...`.
"""

import sys

from persona_vaccine.cli import main

if __name__ == "__main__":
    sys.exit(main())
