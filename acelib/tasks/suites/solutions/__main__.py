"""`python -m acelib.tasks.suites.solutions`: re-render the tabular reference solutions."""
from acelib.tasks.suites.solutions import render_all

for path in render_all():
    print(path)
