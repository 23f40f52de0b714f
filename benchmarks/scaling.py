"""How cost grows with the market and the chain: ``python benchmarks/scaling.py [options]``.

The same as ``mgenv bench scale`` (steps/s and µs per step, per participant and per node for
4-256 microgrids and 4-64 validator nodes, modelled vs Ed25519 signatures; writes
``docs/scaling.png``); the code lives in :mod:`train.bench_scale` so that the installed
package carries it.
"""

from train.bench_scale import main

if __name__ == "__main__":
    main()
