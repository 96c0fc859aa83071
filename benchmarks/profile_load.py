"""Load a generated COCO file once, to profile the reader.

Usage: python -m cProfile -s tottime benchmarks/profile_load.py [FILE]
"""

import sys

import seg

print(seg.read(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/data/val5k.json"))
