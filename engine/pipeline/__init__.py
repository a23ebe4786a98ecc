"""From a file to face vectors, in the order the data flows: scan -> decode -> detect -> align -> embed.

``faces.FaceFinder`` runs decode, detect and align for one photo; ``crops`` cuts aligned faces again
from a photo for known boxes (re-embedding, training examples)."""
