"""What the benchmarks in `benchmarks/` share, so that none copies another or imports it by path.

- `harness`: the one timing harness (CUDA-synchronised wall and process CPU seconds; variants timed
  round-robin in a fresh order every round, warm-up rounds first; the median kept) and the
  machine's name and load for every CSV row;
- `peaks`: the GPUs' dense peak TFLOP/s, for MFU;
- `variants`: the frozen-module masks the speed benchmarks compare;
- `forecast`: a run's steps (`mat.train.RunPlan`, the trainer's own plan) and vanilla FLOPs from its
  config, without training it.

The training step the benchmarks time is the trainer's own (`mat.train.step`).
"""
