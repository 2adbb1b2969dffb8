"""nbgrader configuration of the course (see attnlab/course/release.py and autograder/grading/)."""
c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "attention-from-scratch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Text sources (jupytext MyST) stay out of the release: they hold the solutions.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.md", ".*"]
# Plain `nbgrader autograde`: an infinite loop ends with CellTimeoutError and 0 points.
c.Execute.timeout = 60
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
