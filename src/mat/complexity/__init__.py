"""Table 6's measurement (Appendix B.3): what the full NTK and the modular NTKs cost on this machine.

`sweep` reads the profile's `complexity:` block; `measure` builds the models, times every stage and
writes results/<profile>/complexity/measurements.csv and sweep.json (`python -m mat complexity`,
the Snakemake rule `complexity`). Table 6 itself is a view of those files (mat.report.complexity_table).
"""
