"""Suite-wide settings.

Verilator builds compile their C++ at -O0 (``sim.runner.verilator_cxx_opt``): the suite runs
small frames, where the build dominates (the real ``iq_l8c8`` design compiles about 3x faster);
whole-set runs (``python -m sim.run``) keep Verilator's -Os. Set IQLUT_VERILATOR_CXXOPT to
override.
"""
import os

os.environ.setdefault("IQLUT_VERILATOR_CXXOPT", "-O0")
