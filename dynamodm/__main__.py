"""``python -m dynamodm``: the dynamodm command."""

from .cli import main

if __name__ == "__main__":
    main()
