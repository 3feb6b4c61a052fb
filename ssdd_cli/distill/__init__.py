"""Distillation: the KRR closed form, the model pool, the parameterisation and the outer loop."""
