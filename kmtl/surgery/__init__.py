"""Multi-task methods, one per module, gradient aggregators and loss weightings alike.

- Gradient aggregators combine the per-task gradient stack: `pcgrad`, `gradvac`, `graddrop`,
  `db_mtl` and `moco` read the stack itself; `mgda`, `cagrad`, `imtl_g`, `aligned_mtl`,
  `upgrad`, `dualproj`, `config`, `nash_mtl` and `fairgrad` read only its Gramian
  (`base.GramianAggregator`), and the small optimisation problems some of them solve run in
  the training graph (`solvers.py`).
- Loss weightings weight the task losses: `none` (the plain weighted sum); `gradnorm`,
  `gradscale` and `excess_mtl` from the gradients; `uw`, `rlw`, `dwa`, `gls`, `stch`, `famo`,
  `imtl_l` and `si` from the losses alone, with no per-task gradients.

`base.py` says what a method is: its inputs (the stack, its Gramian, or the losses, with the
presence mask), its family (which decides how the heads are updated), its state and hooks.
Adding a method is one file here (the class, its paper in the docstring, its defaults), one line
in `registry.METHODS`, and one test file; its hyper-parameters are constructor arguments,
reachable as `--surgery_args=name=value,...`.
"""
