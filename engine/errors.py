"""Exceptions with messages meant for the person using the app."""


class FacenetPhotosError(Exception):
    """Base class: the message is shown to the user as one line."""


class ModelError(FacenetPhotosError):
    """A model file is missing, corrupt or has the wrong checksum."""


class ImageError(FacenetPhotosError):
    """An image cannot be read: corrupt, truncated, too large, not an image."""


class LibraryError(FacenetPhotosError):
    """The library cannot be opened or changed."""


class LibraryInUseError(LibraryError):
    """Another process holds the library."""


class EditError(FacenetPhotosError):
    """A correction cannot be applied (unknown person, empty selection...)."""
