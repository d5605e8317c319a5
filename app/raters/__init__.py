"""Rater statistics and inter-rater agreement (Cohen's and Fleiss' kappa, Krippendorff's alpha)."""
