"""`python -m edgecnn` (and `torchrun -m edgecnn train ...`) run the command line."""
from edgecnn.cli import main

if __name__ == "__main__":
    main()
