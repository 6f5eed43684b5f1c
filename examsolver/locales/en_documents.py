"""English words of the document formats (LaTeX article, beamer slides, HTML)."""

PHRASES = {
    "doc.torch_check": "PyTorch check code",
    "doc.key_in_solution": "see the solution",
    "doc.task": "Task {n}",
    "doc.solution_part": "{task} — solution {part}",
    "doc.booklet_title": "Solutions",
    "doc.figure_omitted": "(Figure omitted: write the solution to a file with -o.)",
    "doc.equation_number": "equation {n}",
}
