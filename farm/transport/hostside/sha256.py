"""Prints the sha256 of one file (``python3 sha256.py <path>``), for hosts without coreutils' sha256sum.

Python 3.8, standard library only.
"""

import hashlib
import sys


def main(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


if __name__ == "__main__":
    print(main(sys.argv[1]))
