"""Croatian words of the document formats (LaTeX article, beamer slides, HTML)."""

PHRASES = {
    "doc.torch_check": "Kod u torchu za provjeru",
    "doc.key_in_solution": "vidi rješenje",
    "doc.task": "Zadatak {n}",
    "doc.solution_part": "{task} — rješenje {part}",
    "doc.booklet_title": "Rješenja zadataka",
    "doc.figure_omitted": "(Slika je izostavljena: zapišite rješenje u datoteku opcijom -o.)",
    "doc.equation_number": "jednadžba {n}",
}
