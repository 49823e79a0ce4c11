"""Plain NumPy float64 references: the parity tests' oracle and the benchmark baseline."""
