"""Competitions, grading and the MLE-bench-Lite registry (MLE-bench-compatible; see docs/tasks.md).

    import acelib.tasks as tasks
    comp = tasks.load("spooky-author-identification")   # a Lite id, a suite id or a directory
    report = tasks.grade(comp, "submission/submission.csv")
    tasks.list_competitions()

Importing this package loads neither pandas nor scikit-learn; grading does.
"""
from acelib.tasks.competition import Competition
from acelib.tasks.loader import grade, list_competitions, load, mlebench_data_dir

__all__ = ["Competition", "grade", "list_competitions", "load", "mlebench_data_dir"]
