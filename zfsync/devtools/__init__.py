"""Tools for developers, above the runtime and the simulators: the benchmark (`scripts/bench`), the crash
test (`scripts/crashtest`) and the seeding of months of history. The daemon never imports them."""
