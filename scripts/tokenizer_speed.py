#!/usr/bin/env python3
"""Encoding speed of the Python `tokenizers` library, the anchor of `scripts/bench_tokenizer.sh`.

    python3 scripts/tokenizer_speed.py build DIR CORPUS   # tokenizer files of each style, vocabularies ~8k
    python3 scripts/tokenizer_speed.py time FILE TEXT     # ids of TEXT on stdout, the timing on stderr

`time` encodes the whole text as one string (one call, one thread, as `cca tokenizer encode --timing` times
it) and prints the ids as `cca tokenizer encode` does so that the two can be compared.
"""
import os
import sys
import time

from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizers_reference  # noqa: E402


def main():
    if sys.argv[1] == "build":
        for path in tokenizers_reference.build(sys.argv[2], sys.argv[3], scale=12):
            print(path)
        return
    start = time.perf_counter()
    tokenizer = Tokenizer.from_file(sys.argv[2])
    load = time.perf_counter() - start
    with open(sys.argv[3], encoding="utf-8") as handle:
        text = handle.read()
    size = len(text.encode("utf-8"))
    start = time.perf_counter()
    ids = tokenizer.encode(text).ids
    elapsed = time.perf_counter() - start
    print(" ".join(map(str, ids)))
    print(f"encoded {size} bytes into {len(ids)} ids in {elapsed:.3g} s: {size / 1e6 / elapsed:.3g} MB/s "
          f"(tokenizer loaded in {load:.3g} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
