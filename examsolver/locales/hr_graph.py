"""Fraze grafa: operacije koje spajaju čvorove, zbrojevi po potrošačima čvora, zadani gradijenti."""

PHRASES = {
    "forward.add": "Zbroj čvorova (rezidualna veza) {layer}:",
    "backward.add": "Unatražni prolaz kroz zbroj {layer}: svaki pribrojnik dobiva gradijent odozgo:",
    "forward.concat": "Spajanje (konkatenacija) {layer}:",
    "backward.concat": "Unatražni prolaz kroz spajanje {layer}: svaki dio dobiva svoje retke gradijenta:",
    "forward.mul": "Umnožak po elementima {layer}:",
    "backward.mul": "Unatražni prolaz kroz umnožak po elementima {layer}:",
    "forward.matmul": "Matrični umnožak {layer}:",
    "backward.matmul": "Unatražni prolaz kroz matrični umnožak {layer}:",
    "backward.node_sum": "Čvor je ulaz u {count} čvora: njegov gradijent je zbroj gradijenata koji se vraćaju kroz svakoga od njih:",
    "backward.given": "Zadani gradijent odozgo:",
    "update.parameter_single": "Ažuriranje parametra {name}:",
    "update.parameter_summed": "Ažuriranje parametra {name} zbrojem gradijenata:",
    "loss.sum": "Gubitak je zbroj elemenata izlaza:",
    "backward.sum": "Gradijent zbroja je 1 u svakom elementu:",
}
