"""Plain NumPy float64 references: line for line with the public docstrings' formulas.

They are the oracle of the parity tests and the baseline of the benchmark harness;
written for clarity, not speed. Import the concept's module, e.g.
``from nndl_fast.reference import weight_norm``.
"""
