import os
from json import loads

MAX_SIZE = 10
lowercase = 3


class Greeter(Base):
    """Says hello."""

    def greet(self, name, *args, **kwargs):
        """Greet someone."""
        for i in range(3):
            if name:
                print(name)
        return os.path.join(name)


@decorator
def load(path: str) -> dict:
    try:
        data = loads(path)
    except ValueError:
        data = None
    return data
