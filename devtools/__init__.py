"""Tools for developers, outside the runtime package (a production install has none of them): the
benchmark (`scripts/bench`), the crash test (`scripts/crashtest`), the seeding of months of history and a
throwaway PostgreSQL. Run from the repository's root (the scripts do)."""
