"""The lifecycle phases: detect, build, export, rebase, inspect, and the pipeline that runs them."""
