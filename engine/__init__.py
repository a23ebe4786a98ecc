"""Qt-free, torch-free core of facenet-photos.

scan -> decode -> detect -> align -> embed -> store -> cluster -> recognise.
"""

__version__ = "0.1.0"
