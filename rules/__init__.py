"""The rules: one module per Haiku idiom. The registry (:func:`h2f.rule.all_rules`) finds them here."""
