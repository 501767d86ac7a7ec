"""Lightning callbacks: the EMA teacher and training-time diagnostics."""
