"""`make bench`: the platform measured at a million responses, with numbers anyone can reproduce.

`python -m bench` builds its own data on fresh databases, runs every benchmark, prints one
table and writes it to bench/RESULTS.md with the machine it ran on. `python -m bench --quick`
is a smaller run for trying things. docs/bench.md says what each number means.
"""
