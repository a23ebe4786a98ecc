"""From face vectors to people: clustering (k-NN graph agglomerative) and recognition (k-NN vote
against named people), applied to the store without moving what the user decided."""
