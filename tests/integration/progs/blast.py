"""Writes a deterministic pseudo-random byte stream to stdout or stderr.

    blast.py stdout|stderr SEED SIZE

The bytes are random.Random(SEED).randbytes(SIZE) (see stream()), written
with os.write in chunks of varying size, every partial write continued.
"""

import os
import random
import sys


def stream(seed, size):
    return random.Random(seed).randbytes(size)


def main():
    fd = 1 if sys.argv[1] == "stdout" else 2
    data = memoryview(stream(int(sys.argv[2]), int(sys.argv[3])))
    sizes = random.Random(-1)
    pos = 0
    while pos < len(data):
        end = min(len(data), pos + sizes.randint(1, 256 * 1024))
        while pos < end:
            pos += os.write(fd, data[pos:end])


if __name__ == "__main__":
    main()
