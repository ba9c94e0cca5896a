"""`tpt compare`: arms of evaluated training runs against a baseline (data-efficiency factor, accuracy)."""
