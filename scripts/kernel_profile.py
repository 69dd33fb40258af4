#!/usr/bin/env python3
"""Sums an Nsight Compute duration log by kernel: where a training or decode step spends its GPU time.

    ncu --clock-control none --metrics gpu__time_duration.sum --csv --log-file P.csv \\
        cca bench train --device cuda --steps 1 --models cca-wide
    python3 scripts/kernel_profile.py P.csv --steps 4     # 3 warm-up steps + 1 timed: per step

Kernel names are cut at their argument list, so every instantiation of a template counts as one.
"""
import argparse, collections, csv, re

parser = argparse.ArgumentParser()
parser.add_argument("csv")
parser.add_argument("--steps", type=int, default=1, help="steps the log covers; times and counts are divided by it")
parser.add_argument("--top", type=int, default=30)
args = parser.parse_args()

rows = [row for row in csv.reader(open(args.csv)) if len(row) > 10]
header, rows = rows[0], rows[1:]
name_column, value_column = header.index("Kernel Name"), header.index("Metric Value")
total, launches = collections.Counter(), collections.Counter()
for row in rows:
    name = re.sub(r"\(.*", "", row[name_column])[:80]
    total[name] += float(row[value_column].replace(",", ""))  # nanoseconds
    launches[name] += 1
everything = sum(total.values())
print(f"{len(rows)} kernels, {everything / 1e6 / args.steps:.2f} ms per step ({args.steps} steps)")
for name, value in total.most_common(args.top):
    print(f"{value / 1e6 / args.steps:8.2f} ms/step {100 * value / everything:5.1f}% {launches[name] // args.steps:5d}/step  {name}")
