"""2-D pooling: max, average, power-average (Lp) and adaptive pooling."""
