"""ssdd: self-supervised dataset distillation into versioned `.ssdd` artifacts."""

__version__ = "0.1.0"
