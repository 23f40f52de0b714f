"""Environment speed benchmark: ``python benchmarks/bench_env.py [--steps N --repeats R]``.

The same as ``mgenv bench``; the code lives in :mod:`train.bench` so that the installed
package carries it.
"""

from train.bench import main

if __name__ == "__main__":
    main()
