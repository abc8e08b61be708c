"""Decisions on measured facts, in plain Python: `budgets` checks each variant against the recipe's budgets,
`select` picks the winner among the variants that pass, and `split_plan` chooses where to cut a model among its
legal cut points."""
