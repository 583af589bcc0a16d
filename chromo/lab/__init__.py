"""The lab: the recipe experiments behind the profiles (experiments), Table 4's heads on a frozen backbone
(heads) and the benchmarks that print figures (bench). Nothing in the method core imports from here."""
