"""`tpt pack`: validated augmented records -> fixed-length token rows with per-token kinds and exact stats."""
