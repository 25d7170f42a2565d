"""NAS Lab: the library behind a hands-on course in Neural Architecture Search."""

from nas_lab.checks import check

__version__ = "0.1.0"
__all__ = ["check", "__version__"]
