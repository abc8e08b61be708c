"""The files modelpack writes and how it writes them: atomic output folders, deterministic zips, checksums and
the manifest (`output`), which folders a build may replace (`guard`), the step cache (`cache`), strict JSON
(`jsonio`) and the .npz arrays the build hands between its processes (`arrays`)."""
