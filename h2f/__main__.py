"""`python -m h2f` runs the command line."""

from h2f.cli import main

if __name__ == "__main__":
    main()
