"""Hrvatske riječi izvoza u Moodleov kviz (render/moodle.py)."""

PHRASES = {
    "moodle.instructions": "Svaki rezultat upišite kao decimalni broj na {places} "
                           "{places:decimalu|decimale|decimala} (može i više).",
    "moodle.correct": "Točno.",
    "moodle.mistake": "Netočno: taj se rezultat dobiva uz: {what}.",
    "moodle.figure_omitted": "(Slika rješenja ovdje je izostavljena; vidi rješenje u HTML-u ili PDF-u.)",
}
