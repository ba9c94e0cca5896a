"""`tpt reproduce`: the CPU reasoning testbed and the end-to-end demo of the TPT effect."""
