"""tlcourse: the small, tested helper package behind a hands-on transfer-learning course.

Import the module you need (``from tlcourse import models``); importing the package does nothing else.
"""

__version__ = "0.1.0"
