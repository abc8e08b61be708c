"""What a person or a CI log sees while modelpack runs: the progress line or timestamped log lines
(`progress`), and GitHub Actions annotations, log groups, step outputs and summaries (`github`)."""
