"""`tpt augment`: a teacher LLM writes one thinking trajectory per document (the paper's section 2)."""
