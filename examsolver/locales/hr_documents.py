"""Croatian words of the document formats (LaTeX article, beamer slides, HTML)."""

PHRASES = {
    "doc.torch_check": "Kod u torchu za provjeru",
    "doc.key_in_solution": "vidi rješenje",
    "doc.task": "Zadatak {n}",
    "doc.solution_part": "{task} — rješenje {part}",
    "doc.booklet_title": "Rješenja zadataka",
    "doc.figure_omitted": "(Slika je izostavljena: zapišite rješenje u datoteku opcijom -o.)",
    "doc.variant_title": "{title} (varijanta {n})",
    "doc.equation_number": "jednadžba {n}",
}
PHRASES.update({
    "heading.given": "Zadano",
    "given.layer": "sloj {name} ({kind}) {params}",
    "given.linear": "potpuno povezani sloj ($\\mathbf{{W}}\\mathbf{{x}} + \\mathbf{{b}}$) s parametrima {params}",
    "given.conv1d": "1D konvolucija s jezgrama {params}",
    "given.conv2d": "2D konvolucija s jezgrama {params}",
    "given.batchnorm": "normalizacija nad grupom {params}",
    "given.relu": "aktivacija zglobnicom",
    "given.sigmoid": "aktivacija sigmoidom",
    "given.tanh": "aktivacija tangensom hiperbolnim",
    "given.softmax": "aktivacija softmaksom",
    "given.global_avg_pool": "globalno sažimanje prosjekom",
    "given.max_pool2d": "sažimanje maksimumom",
    "given.avg_pool2d": "sažimanje prosjekom",
    "given.flatten": "izravnavanje u vektor",
    "given.example": "podatak {x}",
    "given.example_label": "podatak {x} s oznakom {y}",
    "given.loss": "gubitak {kind}",
    "given.loss.cross_entropy": "gubitak unakrsne entropije",
    "given.loss.binary_cross_entropy": "gubitak binarne unakrsne entropije",
    "given.loss.mse": "kvadratni gubitak",
})
