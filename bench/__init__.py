"""ChainGate benchmarks: each measures a baseline in the same run and reports the ratio.

Run one with `python -m bench.<name> [--quick]`, all with `python -m bench.run_all [--quick]`.
Results go to bench/results/<name>.json; docs/performance.md explains the method and figures.
"""
