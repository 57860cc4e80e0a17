"""Metric families, one module each: param_delta, logit_shift, hidden_drift, influence, linear."""
