"""English words of the Moodle quiz export (render/moodle.py)."""

PHRASES = {
    "moodle.instructions": "Write each result as a decimal number to {places} decimal {places:place|places} "
                           "(more are fine).",
    "moodle.correct": "Correct.",
    "moodle.mistake": "Not right: that is the result with {what}.",
    "moodle.figure_omitted": "(A figure of the solution is left out here; see the HTML or PDF solution.)",
}
