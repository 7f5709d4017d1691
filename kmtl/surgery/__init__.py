"""Multi-task methods, one per module: gradient aggregators (PCGrad, and those over the
Gramian) and loss weightings (GradNorm, gradient-norm scaling, uncertainty weighting, the plain
weighted sum) alike. `base.py` says what a method is: its inputs (the per-task gradient stack,
its Gramian, or the losses, with the presence mask), its family (which decides how the heads
are updated), its state and hooks.

Adding a method is one file here (the class, its paper in the docstring, its defaults), one line
in `registry.METHODS`, and one test file; its hyper-parameters are constructor arguments,
reachable as `--surgery_args=name=value,...`.
"""
